// Opens /docs in headless Chromium: the page renders every operation of /openapi.json, with a
// navigation link each, and requests nothing from any other origin.
// Usage: node docs.mjs <base url>
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  const foreign = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) foreign.push(r.url());
  });
  await page.goto(`${base}/docs`);
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const expected = Object.values(doc.paths)
    .flatMap((item) => ["get", "post", "put", "patch", "delete"].filter((m) => item[m])).length;
  await page.waitForFunction((n) => document.querySelectorAll("section.op").length === n, expected);
  assert.equal(await page.locator("nav a").count(), expected);
  assert.match(await page.textContent("#title"), new RegExp(doc.info.title));
  // The create operation shows its request body schema with references resolved.
  const create = page.locator("section#createWaybill");
  assert.match(await create.textContent(), /referenceNumber/);
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
  console.log(`docs: ok (${expected} operations)`);
} finally {
  await browser.close();
}
