// Partners in the web client, end to end in real headless Chromium against a platform that
// runs only trusted documents (the production mode): API keys in Settings (created with
// scopes, the secret shown once, revoked), the OAuth consent screen (/oauth/authorize: allow
// sends the browser back to the app with a code; an invalid request is shown, never
// redirected), connected apps in Settings; then the same screens in Spanish. Driven by
// tests/web/test_partners_browser.py, which creates the customers and the partner app and
// checks, when asked, that a key works or not and that the code gives a token for this
// customer. Same protocol as flow.mjs.
// Webhooks in Settings too: one created (its signing secret shown once), a signed delivery
// seen in its log (the test's receiver verifies the signature with that secret), resent.
// Usage: node e2e/partners.mjs --base-url URL --out DIR --email E --email-es E --password P
//        --authorize PATH --authorize-es PATH --callback URL --webhook URL
import { join } from "node:path";
import { args, ask, audit, BASE, launch, OUT, problems, reportFailure, step, wholeWords } from "./harness.mjs";

let shot = 0;
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: join(OUT, `partners-${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
  await wholeWords(page, `partners ${name}`);
}

async function signIn(page, email) {
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(args.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
}

const browser = await launch();
let page;
let code = 0;
try {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport: { width: 1366, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await step("sign in", () => signIn(page, args.email));

  let secret = "";
  await step("create an API key with scopes in Settings: its secret is shown once", async () => {
    await page.goto("/settings");
    const card = page.locator("section.card").filter({ has: page.getByRole("heading", { name: "API keys" }) }).first();
    await card.getByLabel("Key name").fill("My script");
    await card.getByLabel("Trade").check();
    await card.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByTestId("api-key-secret");
    await shown.waitFor();
    secret = (await shown.locator("code").innerText()).trim();
    if (!secret.startsWith("bsk_")) throw new Error(`unexpected key ${secret}`);
    await audit(page, "settings api keys");
    await shown.scrollIntoViewIfNeeded();
    await snap(page, "api-key-created");
    if ((await ask({ need: "key-works", secret })) !== "ok") throw new Error("the key did not work");
  });

  await step("the key is listed by its prefix, and revoked", async () => {
    await page.getByRole("button", { name: "I've copied it" }).click();
    const row = page.getByTestId("api-keys").locator("li").filter({ hasText: "My script" });
    await row.getByText(secret.split("_").slice(0, 2).join("_")).waitFor();
    await row.getByText("Trade").waitFor();
    await snap(page, "api-key-listed");
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.getByText("No keys yet.").waitFor();
    if ((await ask({ need: "key-revoked", secret })) !== "ok") throw new Error("the revoked key still works");
  });

  await step("the consent screen names the app and what it asks for", async () => {
    await page.goto(args.authorize);
    const consent = page.getByTestId("oauth-consent");
    await consent.waitFor();
    await consent.getByText("Robo Advisor").waitFor();
    await consent.getByText("See your profile, balances, orders and holdings").waitFor();
    await consent.getByText("Place, change and cancel orders for you").waitFor();
    await audit(page, "oauth consent");
    await snap(page, "consent");
  });

  await step("allow sends the browser back to the app with a code for this customer", async () => {
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL((url) => url.href.startsWith(args.callback));
    // The app loaded there too and resumed the session (a refresh): let it finish, or the
    // next navigation would present the same refresh token again (treated as theft).
    await page.waitForLoadState("networkidle");
    if ((await ask({ need: "code", url: page.url() })) !== "ok") throw new Error("the code gave no token for this customer");
  });

  await step("the connected app is listed in Settings, and disconnected", async () => {
    await page.goto("/settings");
    const row = page.getByTestId("connected-apps").locator("li").filter({ hasText: "Robo Advisor" });
    await row.waitFor();
    await row.scrollIntoViewIfNeeded();
    await snap(page, "connected-app");
    await row.getByRole("button", { name: "Disconnect" }).click();
    await page.getByText("No apps are connected to your account.").waitFor();
  });

  await step("a webhook in Settings: its secret is shown once, a signed delivery in its log, resent", async () => {
    await page.goto("/settings");
    const card = page.locator("section.card").filter({ has: page.getByRole("heading", { name: "Webhooks" }) }).first();
    await card.getByLabel("Endpoint URL").fill(args.webhook);
    await card.getByRole("button", { name: "Add webhook" }).click();
    const shown = page.getByTestId("webhook-secret");
    await shown.waitFor();
    const secret = (await shown.locator("code").innerText()).trim();
    if (!secret.startsWith("whsec_")) throw new Error(`unexpected secret ${secret}`);
    await audit(page, "settings webhooks");
    await shown.scrollIntoViewIfNeeded();
    await snap(page, "webhook-created");
    if ((await ask({ need: "webhook-event", secret })) !== "ok") throw new Error("no signed delivery arrived");
    await card.getByRole("button", { name: "I've copied it" }).click();
    if (await card.getByText(secret).count()) throw new Error("the secret is still shown");
    const row = page.getByTestId("webhooks").locator("li").filter({ hasText: args.webhook });
    await row.getByRole("button", { name: "Delivery log" }).click();
    const log = row.getByTestId("webhook-deliveries");
    await log.getByText("funds.deposit.completed").waitFor();
    await log.getByText("Delivered").waitFor();
    await audit(page, "webhook delivery log");
    await log.scrollIntoViewIfNeeded();
    await snap(page, "webhook-log");
    await log.getByRole("button", { name: "Resend" }).click();
    // The worker may send it again before the log is fetched anew: then the row is Delivered
    // again, with its second attempt counted, and "Pending" was never on screen.
    await log.getByText("Pending").or(log.getByText("Attempts: 2")).first().waitFor();
    if ((await ask({ need: "webhook-replayed" })) !== "ok") throw new Error("the resend did not arrive");
  });

  await step("an invalid request is shown, not redirected", async () => {
    await page.goto("/oauth/authorize?client_id=bpa_nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge_method=S256");
    await page.getByTestId("oauth-invalid").waitFor();
    if (!page.url().startsWith(BASE)) throw new Error(`redirected to ${page.url()}`);
    await snap(page, "invalid");
  });

  const es = await browser.newContext({ baseURL: BASE, locale: "es-ES", viewport: { width: 390, height: 844 }, isMobile: true });
  page = await es.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await step("in Spanish: the API keys card on a phone", async () => {
    await page.goto("/sign-in");
    await page.locator('input[type="email"]').fill(args["email-es"]);
    await page.locator('input[type="password"]').fill(args.password);
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(`${BASE}/`);
    await page.goto("/settings");
    const card = page.locator("section.card").filter({ has: page.getByRole("heading", { name: "Claves de API" }) }).first();
    await card.getByLabel("Nombre de la clave").fill("Mi script");
    await card.getByRole("button", { name: "Crear clave" }).click();
    await page.getByText("Copia esta clave ahora: solo se muestra una vez.").waitFor();
    await page.getByTestId("api-key-secret").scrollIntoViewIfNeeded();
    await snap(page, "es-api-key");
    await page.getByRole("heading", { name: "Aplicaciones conectadas" }).waitFor();
    const hooks = page.locator("section.card").filter({ has: page.getByRole("heading", { name: "Webhooks" }) }).first();
    await hooks.getByText("Aún no tienes webhooks.").waitFor();
    await hooks.getByLabel("URL del destino").fill("ftp://no");
    await hooks.getByRole("button", { name: "Añadir webhook" }).click();
    await hooks.getByText("Indica una dirección https:// de internet pública.").first().waitFor();
    await hooks.scrollIntoViewIfNeeded();
    await snap(page, "es-webhooks");
  });

  await step("in Spanish: the consent screen", async () => {
    await page.goto(args["authorize-es"]);
    const consent = page.getByTestId("oauth-consent");
    await consent.getByText("quiere usar tu cuenta de Bourse para:").waitFor();
    await consent.getByText("Ver tu perfil, saldos, órdenes y posiciones").waitFor();
    await page.getByRole("button", { name: "Permitir" }).waitFor();
    await audit(page, "oauth consent es");
    await snap(page, "es-consent");
  });
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  reportFailure(error);
  if (page) await page.screenshot({ path: join(OUT, "partners-FAILED.png"), fullPage: true }).catch(() => undefined);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
