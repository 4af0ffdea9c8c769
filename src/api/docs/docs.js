// Renders the OpenAPI document of this server: every operation with its parameters, request
// body and responses; schemas are shown as JSON with their $refs resolved one level at a time.
"use strict";

const el = (tag, attrs, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

function resolve(doc, schema, depth) {
  if (!schema || typeof schema !== "object") return schema;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    const target = doc.components && doc.components.schemas && doc.components.schemas[name];
    if (!target || depth > 4) return { $ref: name };
    return resolve(doc, target, depth + 1);
  }
  if (Array.isArray(schema)) return schema.map((s) => resolve(doc, s, depth));
  const out = {};
  for (const [k, v] of Object.entries(schema)) out[k] = resolve(doc, v, depth);
  return out;
}

function schemaBlock(doc, content) {
  const wrap = el("div");
  for (const [type, media] of Object.entries(content || {})) {
    wrap.append(el("div", {}, el("code", {}, type)));
    if (media && media.schema) {
      wrap.append(el("pre", {}, JSON.stringify(resolve(doc, media.schema, 0), null, 2)));
    }
  }
  return wrap;
}

function operation(doc, path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  const s = el("section", { class: "op", id });
  s.append(el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), el("code", {}, path)));
  if (op.summary) s.append(el("p", {}, op.summary));
  if (op.description) s.append(el("p", {}, op.description));
  const params = (op.parameters || []).map((p) => resolve(doc, p, 0));
  if (params.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "required"), el("th", {}, "schema")));
    for (const p of params) {
      t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, p.required ? "yes" : "no"), el("td", {}, el("code", {}, JSON.stringify(p.schema || {})))));
    }
    s.append(el("h4", {}, "Parameters"), t);
  }
  if (op.requestBody) {
    const body = resolve(doc, op.requestBody, 0);
    s.append(el("h4", {}, "Request body"), schemaBlock(doc, body.content));
  }
  s.append(el("h4", {}, "Responses"));
  for (const [code, res] of Object.entries(op.responses || {})) {
    const r = resolve(doc, res, 0);
    s.append(el("div", {}, el("strong", {}, code), " ", r.description || ""), schemaBlock(doc, r.content));
  }
  return s;
}

async function main() {
  const doc = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById("subtitle").textContent = doc.info.description || "";
  const nav = document.getElementById("nav");
  const ops = document.getElementById("ops");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const section = operation(doc, path, method, op);
      ops.append(section);
      nav.append(el("a", { href: `#${section.id}` }, `${method.toUpperCase()} ${path}`));
    }
  }
}

main().catch((e) => {
  document.getElementById("subtitle").textContent = `Could not load /openapi.json: ${e}`;
});
