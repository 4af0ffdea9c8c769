// Drives /station in headless Chromium: key entry, a scan (number + Enter) showing the label,
// the print button, a visible error for an unknown number, and batch printing.
// Usage: node station.mjs <base url> <api key> <number> <second number>
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [base, key, first, second] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  // Count prints instead of opening the dialog.
  await page.addInitScript(() => {
    window.__prints = 0;
    window.shipgatePrint = () => { window.__prints += 1; };
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  await page.goto(`${base}/station`);
  await page.fill("#key", key);
  await page.click("#key-form button");

  // A scanner types the number and Enter.
  const labelLoaded = page.waitForResponse((r) => r.url().includes(`/v1/waybills/${first}/label`));
  await page.fill("#scan", first);
  await page.press("#scan", "Enter");
  const response = await labelLoaded;
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["content-type"], "application/pdf");
  await page.waitForFunction(() => document.querySelector("#label").src.startsWith("blob:"));
  assert.equal(await page.getAttribute("#label", "data-shown"), first);
  assert.equal(await page.isHidden("#error"), true);
  await page.click("#print");
  assert.equal(await page.evaluate(() => window.__prints), 1);

  // An unknown number is shown as an error, not silently ignored.
  await page.fill("#scan", "NO-SUCH-WAYBILL");
  await page.press("#scan", "Enter");
  await page.waitForSelector("#error", { state: "visible" });
  assert.match(await page.textContent("#error"), /NO-SUCH-WAYBILL/);

  // Batch mode: collect two scans, print them as one PDF.
  await page.check("#batch-mode");
  for (const n of [second, first]) {
    await page.fill("#scan", n);
    await page.press("#scan", "Enter");
  }
  assert.equal(await page.locator("#batch-list li").count(), 2);
  const batch = page.waitForResponse((r) => r.url().endsWith("/v1/labels/batch"));
  await page.click("#print-batch");
  const batchResponse = await batch;
  assert.equal(batchResponse.status(), 200);
  assert.deepEqual(JSON.parse(batchResponse.request().postData()), { numbers: [second, first] });
  await page.waitForFunction(() => document.querySelector("#label").dataset.shown === "batch of 2");
  await page.waitForFunction(() => window.__prints === 2);
  assert.deepEqual(errors, []);
  console.log("station: ok");
} finally {
  await browser.close();
}
