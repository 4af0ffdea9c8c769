// The label station: a key entered once, a scan field a barcode scanner types into (number +
// Enter), the label shown and printed with the browser's print dialog, and a batch mode.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const keyInput = $("key"), scan = $("scan"), frame = $("label"), error = $("error"), status = $("status");
  const batchMode = $("batch-mode"), batchList = $("batch-list");
  const batch = [];
  let current = null;

  keyInput.value = localStorage.getItem("shipgate.key") || "";
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("shipgate.key", keyInput.value.trim());
    status.textContent = "Key saved.";
    scan.focus();
  });

  const showError = (msg) => { error.textContent = msg; error.hidden = false; };
  const clearError = () => { error.hidden = true; error.textContent = ""; };

  // Printing goes through one function so that it can be observed in tests.
  window.shipgatePrint = window.shipgatePrint || ((win) => { win.focus(); win.print(); });

  async function call(path, options = {}) {
    const key = localStorage.getItem("shipgate.key") || "";
    const res = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${key}` } });
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try {
        const body = await res.json();
        msg = body.errorMsg || msg;
        if (body.details) msg += ": " + body.details.map((d) => d.errorMsg).join("; ");
      } catch (_) { /* not JSON */ }
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return res.blob();
  }

  function show(blob, label) {
    if (current) URL.revokeObjectURL(current);
    current = URL.createObjectURL(blob);
    frame.src = current;
    frame.dataset.shown = label;
    $("print").disabled = false;
  }

  async function showLabel(number) {
    clearError();
    status.textContent = `Loading ${number}…`;
    try {
      let blob;
      try {
        blob = await call(`/v1/waybills/${encodeURIComponent(number)}/label`);
      } catch (e) {
        // Not a waybill: an order's number (or id) prints all of that order's labels.
        if (e.status !== 404) throw e;
        blob = await call(`/v1/orders/${encodeURIComponent(number)}/labels`);
      }
      show(blob, number);
      status.textContent = `Label ${number}`;
    } catch (e) {
      status.textContent = "";
      showError(`${number}: ${e.message}`);
    }
  }

  scan.addEventListener("keydown", async (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    const number = scan.value.trim();
    scan.value = "";
    if (!number) return;
    if (batchMode.checked) {
      clearError();
      batch.push(number);
      const item = document.createElement("li");
      item.textContent = number;
      batchList.appendChild(item);
      status.textContent = `${batch.length} in batch`;
    } else {
      await showLabel(number);
    }
  });

  batchMode.addEventListener("change", () => { $("batch").hidden = !batchMode.checked; scan.focus(); });
  $("clear-batch").addEventListener("click", () => { batch.length = 0; batchList.textContent = ""; status.textContent = ""; });
  $("print").addEventListener("click", () => window.shipgatePrint(frame.contentWindow));
  $("print-batch").addEventListener("click", async () => {
    clearError();
    try {
      const blob = await call("/v1/labels/batch", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ numbers: batch }),
      });
      show(blob, `batch of ${batch.length}`);
      status.textContent = `Batch of ${batch.length}`;
      frame.addEventListener("load", () => window.shipgatePrint(frame.contentWindow), { once: true });
    } catch (e) {
      showError(e.message);
    }
  });
})();
