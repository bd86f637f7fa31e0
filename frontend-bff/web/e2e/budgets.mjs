// Web budgets in headless Chromium against a running platform (bench/web_budgets.py starts
// it): sign-in form interactive, home with live data, and quote tick -> DOM latency on the
// asset page. Prints one JSON object. Usage: node e2e/budgets.mjs --base-url URL --seconds N
import { args, BASE, launch } from "./harness.mjs";

const SECONDS = Number(args.seconds ?? 20);
const browser = await launch();
const out = {};
try {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1366, height: 900 }, serviceWorkers: "block" });
  // Record when each quote message reaches the page's JS (before the app's handler runs).
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__ticks = [];
    window.WebSocket = class extends Native {
      constructor(...a) {
        super(...a);
        this.addEventListener("message", (e) => {
          try {
            const q = JSON.parse(e.data)?.payload?.data?.quotes;
            if (q) window.__ticks.push({ t: performance.now(), id: q.assetId, price: q.price, bid: q.bid });
          } catch { /* not ours */ }
        });
      }
    };
  });
  const page = await context.newPage();

  // 1. First page usable: a cold load of /sign-in until the email field takes input.
  await page.goto("/sign-in", { waitUntil: "commit" });
  await page.getByLabel("Email").waitFor();
  await page.waitForFunction(() => {
    const el = document.querySelector('input[type="email"]');
    return el && !el.disabled;
  });
  out.signInInteractiveMs = Math.round(await page.evaluate(() => performance.now()));

  // Set up a funded user with a holding (through the UI's API).
  const email = `budget${Date.now().toString(36)}@example.com`;
  const password = "Correct-Horse-Battery-9";
  await page.evaluate(async ({ email, password }) => {
    const gql = async (query, variables, token) => {
      const r = await fetch("/graphql", { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ query, variables }) });
      return (await r.json()).data;
    };
    await gql("mutation($i: RegisterInput!) { register(input: $i) { errors { code } } }", { i: { username: email.split("@")[0], email, password } });
    const login = await gql("mutation($i: LoginInput!) { login(input: $i) { token refreshToken } }", { i: { email, password } });
    const token = login.login.token;
    await gql('mutation { deposit(input: {amount: "1000", currency: "USD", paymentMethod: "sandbox:bench", idempotencyKey: "b1"}) { errors { code } } }', {}, token);
    await gql('mutation { placeOrder(input: {assetId: "BTC-USD", orderType: BUY, orderSubType: MARKET, notional: "100"}) { errors { code } } }', {}, token);
    localStorage.setItem("bourse.refreshToken", login.login.refreshToken);
  }, { email, password });
  await page.waitForTimeout(1500); // the fill settles

  // 2. Home with live data: a cold load of / (session resumed from the refresh token) until the
  // holding's value and the total show, and a live quote for it has arrived.
  await page.goto("/", { waitUntil: "commit" });
  await page.waitForFunction(() => {
    const total = document.querySelector('[data-testid="total-value"] .stat-value')?.textContent ?? "";
    const row = document.querySelector('[data-asset="BTC-USD"] [data-testid="holding-value"]')?.textContent ?? "";
    return /\d/.test(total) && /\d/.test(row) && window.__ticks.some((t) => t.id === "BTC-USD");
  }, null, { timeout: 15_000 });
  out.homeLiveMs = Math.round(await page.evaluate(() => performance.now()));

  // 3. Quote tick -> DOM on the asset page (ETH-USD, not traded here): each quote message vs the moment the bid on
  // screen shows it (the bid moves with every book update; the last price holds still while a
  // recent venue trade sets it).
  await page.goto("/asset/ETH-USD");
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="bid"]')?.textContent ?? ""));
  await page.evaluate(() => {
    window.__ticks = [];
    window.__dom = [];
    for (const field of ["last-price", "bid"]) {
      const el = document.querySelector(`[data-testid="${field}"]`);
      new MutationObserver(() => window.__dom.push({ field, t: performance.now(), text: el.textContent })).observe(el, { subtree: true, childList: true, characterData: true });
    }
  });
  await page.waitForTimeout(SECONDS * 1000);
  const { ticks, dom } = await page.evaluate(() => ({ ticks: window.__ticks, dom: window.__dom }));
  const digits = (s) => s.replace(/\D/g, "");
  const latencies = [];
  let unchanged = 0;
  let superseded = 0;
  const previous = { "last-price": null, bid: null };
  for (const tick of ticks.filter((t) => t.id === "ETH-USD")) {
    for (const [field, value] of [["last-price", tick.price], ["bid", tick.bid]]) {
      if (!value) continue;
      const want = digits(Number(value).toFixed(2));
      if (want === previous[field]) { unchanged += 1; continue; }
      previous[field] = want;
      const hit = dom.find((d) => d.field === field && d.t >= tick.t && digits(d.text) === want);
      if (hit) latencies.push(hit.t - tick.t);
      else superseded += 1;
    }
  }
  // Percentiles are computed by bench/stats.py (the one percentile of the benchmarks).
  out.tick = { seconds: SECONDS, ticks: ticks.length, unchanged, superseded, latenciesMs: latencies };
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
