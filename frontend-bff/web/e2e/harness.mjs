// What every browser flow shares: its arguments, the JSON-lines protocol to the test that drives
// it (tests/web/flows.py), steps, accessibility audits and Debian's chromium.
//
// Protocol, one JSON object per line on stdout: {"step", "ok", "ms"} as a step passes;
// {"axe", "violations"} per audited screen; {"need", ...} when the flow needs its driver (the
// answer comes back as one line on stdin: `ask`); {"fail", "step", "error"}, then exit 1.
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { AxeBuilder } from "@axe-core/playwright";
import { chromium } from "playwright-core";

export const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
export const BASE = args["base-url"];
export const OUT = args.out ?? "var/screenshots";
mkdirSync(OUT, { recursive: true });

export const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

let lines = null;
/** Tell the driver what is needed; resolves with its one-line answer. */
export async function ask(request) {
  lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  say(request);
  const { value } = await lines.next();
  return String(value ?? "").trim();
}

/** Problems seen on the way (page errors, CSP refusals): the flow fails at the end if any. */
export const problems = [];

let current = "start";
/** The step running now (or the last one), for a failure report. */
export const currentStep = () => current;

export async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  try {
    await fn();
  } catch (error) {
    if (error && typeof error === "object" && !error.step) error.step = name;
    throw error;
  }
  say({ step: name, ok: true, ms: Date.now() - t0 });
}

/** axe-core on the screen as it is: a serious or critical WCAG 2.1 AA violation fails it. */
export async function audit(page, screen) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  say({ axe: screen, violations: bad.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })) });
  if (bad.length) throw new Error(`axe on ${screen}: ${bad.map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 2).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
}

/**
 * No one-word label broken across lines: a tab or button whose text has no space must sit on
 * one line ("1m" drawn as "1" over "m" is a layout bug even though every pixel is on screen).
 */
export async function wholeWords(page, screen) {
  const broken = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("button, .segment, .btn, [role=tab]")) {
      const text = (el.textContent ?? "").trim();
      if (!text || /\s/.test(text) || el.getClientRects().length === 0) continue;
      // The text's own line boxes (not the element's): two that do not overlap vertically are two lines.
      const rects = [];
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(node);
        rects.push(...[...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0));
      }
      const lines = rects.some((a) => rects.some((b) => b.top >= a.bottom - 1));
      if (lines) out.push(text);
    }
    return out;
  });
  if (broken.length) throw new Error(`${screen}: one-word labels broken across lines: ${broken.join(", ")}`);
}

/** Debian's chromium, headless; playwright gives every launch a fresh user-data-dir. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The failure report for `error` (the step it happened in). */
export function reportFailure(error) {
  say({ fail: true, step: error?.step ?? current, error: String(error?.stack ?? error) });
}
