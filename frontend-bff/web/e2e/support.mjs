// The support chat end to end in real headless Chromium (Debian's, via playwright-core): a
// customer and a SUPPORT agent in two browser contexts exchange messages live. Driven by
// tests/web/test_support_chat.py, which creates both accounts. Same protocol as flow.mjs: one
// JSON object per line ({"step", "ok"}; {"axe", "violations"}; {"fail", "step", "error"}).
// Usage: node e2e/support.mjs --base-url URL --out DIR --customer EMAIL --staff EMAIL --password P
import { join } from "node:path";
import { args, audit, BASE, launch, OUT, problems, reportFailure, step, wholeWords } from "./harness.mjs";


let shot = 0;
async function snap(page, name, fullPage = true) {
  shot += 1;
  // Phones: what the screen shows (a full-page capture draws the fixed tab bar mid-page).
  await page.screenshot({ path: join(OUT, `support-${String(shot).padStart(2, "0")}-${name}.png`), fullPage });
  await wholeWords(page, `support ${name}`);
}

/** The first search result is `title` (the server's ranking, shown in order). */
async function firstResult(page, title) {
  const first = page.getByTestId("help-results").getByRole("link").first();
  await first.filter({ hasText: title }).waitFor();
}

async function signedIn(browser, label, email, viewport) {
  const context = await browser.newContext({ baseURL: BASE, locale: "en-US", viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(args.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
  return { context, page };
}

const XSS = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">Hello from support";

const browser = await launch();
let code = 0;
let customer;
let agent;
try {
  const subject = `Fractional shares question ${Date.now().toString(36)}`;
  await step("both sign in", async () => {
    customer = await signedIn(browser, "customer", args.customer, { width: 1280, height: 860 });
    agent = await signedIn(browser, "staff", args.staff, { width: 1366, height: 900 });
  });

  await step("the customer searches the help centre", async () => {
    const { page } = customer;
    await page.getByRole("link", { name: "Help centre" }).click();
    await page.getByLabel("Search help").fill("fractonal");
    await page.getByRole("heading", { name: "Best matches" }).waitFor();
    await firstResult(page, "Fractional shares");
    await audit(page, "help centre");
    await snap(page, "help-search");
  });

  let ticketUrl = "";
  await step("the customer opens a ticket, with articles suggested while typing the subject", async () => {
    const { page } = customer;
    await page.getByRole("link", { name: "Contact support" }).click();
    await page.getByLabel("Subject").fill(subject);
    await page.getByTestId("suggested-articles").getByRole("link", { name: "Fractional shares" }).waitFor();
    await page.getByLabel("Topic").selectOption("ORDERS");
    await page.getByLabel("Message").fill("How do I buy half a share?");
    await audit(page, "new ticket");
    await snap(page, "new-ticket");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForURL(/\/support\/[0-9a-f-]{36}$/);
    ticketUrl = page.url();
    await page.getByTestId("message-body").filter({ hasText: "How do I buy half a share?" }).waitFor();
  });

  await step("the agent finds it in the queue and opens it, with the customer's summary", async () => {
    const { page } = agent;
    await page.getByTestId("staff-desk-link").click();
    await page.getByRole("link", { name: subject }).waitFor();
    await audit(page, "staff queue");
    await snap(page, "staff-queue");
    await page.getByRole("link", { name: subject }).click();
    await page.waitForURL(ticketUrl);
    await page.getByTestId("customer-summary").waitFor();
    await page.getByTestId("message-body").filter({ hasText: "How do I buy half a share?" }).waitFor();
    await audit(page, "staff ticket");
  });

  await step("the customer sees the agent typing, then the reply live, as text", async () => {
    await agent.page.getByTestId("chat-input").fill(XSS);
    await customer.page.getByTestId("typing").filter({ hasText: "is typing" }).waitFor();
    await agent.page.getByTestId("chat-send").click();
    const bubble = customer.page.getByTestId("message-body").filter({ hasText: "Hello from support" });
    await bubble.waitFor();
    const text = await bubble.textContent();
    if (!text.includes("<script>window.__pwned = 1</script>")) throw new Error(`the markup was not shown as text: ${text}`);
    const pwned = await customer.page.evaluate(() => window.__pwned);
    if (pwned !== undefined) throw new Error(`the message ran as HTML (window.__pwned = ${pwned})`);
    const scripts = await customer.page.locator("[data-testid=chat] script, [data-testid=chat] img").count();
    if (scripts) throw new Error("the message became elements");
    await snap(customer.page, "customer-chat");
  });

  await step("the customer attaches a screenshot and the agent downloads it", async () => {
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");
    await customer.page.getByTestId("attach-input").setInputFiles({ name: "my screen.png", mimeType: "image/png", buffer: png });
    await customer.page.getByTestId("attachment").filter({ hasText: "my screen.png" }).waitFor();
    const link = agent.page.getByTestId("attachment").filter({ hasText: "my screen.png" });
    await link.waitFor();
    const [download] = await Promise.all([agent.page.waitForEvent("download"), link.click()]);
    if (download.suggestedFilename() !== "my screen.png") throw new Error(`downloaded ${download.suggestedFilename()}`);
    const fake = Buffer.from("<html><script>alert(1)</script></html>");
    await customer.page.getByTestId("attach-input").setInputFiles({ name: "cat.png", mimeType: "image/png", buffer: fake });
    await customer.page.getByText("Attach an image (PNG, JPEG, GIF, WebP) or a PDF.").waitFor();
  });

  await step("an internal note stays on the staff side", async () => {
    const { page } = agent;
    await page.getByTestId("internal-toggle").check();
    await page.getByTestId("chat-input").fill("Internal: customer is new, be gentle");
    await page.getByTestId("chat-send").click();
    await page.getByTestId("message-body").filter({ hasText: "Internal: customer is new" }).waitFor();
    await page.getByTestId("internal-toggle").uncheck();
  });

  await step("the customer replies and the agent receives it live, then sees it was read", async () => {
    await customer.page.getByTestId("chat-input").fill("Thanks, that helps!");
    await customer.page.getByTestId("chat-send").click();
    await agent.page.getByTestId("message-body").filter({ hasText: "Thanks, that helps!" }).waitFor();
    await agent.page.getByTestId("chat-input").fill("You're welcome.");
    await agent.page.getByTestId("chat-send").click();
    await customer.page.getByTestId("message-body").filter({ hasText: "You're welcome." }).waitFor();
    await agent.page.getByTestId("seen").waitFor();
    const leaked = await customer.page.getByText("customer is new").count();
    if (leaked) throw new Error("the internal note reached the customer");
    await snap(agent.page, "staff-chat");
    await audit(customer.page, "customer chat");
  });

  await step("the agent resolves it and the customer rates it", async () => {
    await agent.page.getByRole("button", { name: "Resolve" }).click();
    await agent.page.getByTestId("ticket-status").filter({ hasText: "Resolved" }).waitFor();
    await customer.page.reload();
    await customer.page.getByRole("button", { name: "5 out of 5" }).click();
    await customer.page.getByText("You rated this 5 out of 5").waitFor();
    await snap(customer.page, "rated");
  });

  await step("on a phone: the conversation and the staff desk fit a 390 px screen", async () => {
    for (const [who, side] of [["customer", customer], ["staff", agent]]) {
      await side.page.setViewportSize({ width: 390, height: 844 });
      await side.page.goto(ticketUrl);
      await side.page.getByTestId("message-body").first().waitFor();
      const overflow = await side.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) throw new Error(`${who}: the page is ${overflow}px wider than the screen`);
      await audit(side.page, `${who} chat (phone)`);
      await snap(side.page, `${who}-phone`, false);
      await side.page.setViewportSize({ width: 1280, height: 860 });
    }
  });

  await step("Spanish: the help centre in the customer's language", async () => {
    const { page } = customer;
    await page.getByRole("link", { name: "Settings" }).first().click();
    await page.getByLabel("Language").selectOption("es");
    await page.getByRole("heading", { name: "Ajustes" }).waitFor();
    await page.getByRole("link", { name: "Centro de ayuda" }).click();
    await page.getByLabel("Buscar en la ayuda").fill("fraccionadas");
    await page.getByRole("heading", { name: "Mejores resultados" }).waitFor();
    await firstResult(page, "Acciones fraccionadas");
    await snap(page, "help-es");
  });
  if (problems.length) throw new Error(problems.join("\n"));
} catch (error) {
  reportFailure(error);
  for (const [who, side] of [["customer", customer], ["staff", agent]]) {
    if (side) await side.page.screenshot({ path: join(OUT, `support-FAILED-${who}.png`), fullPage: true }).catch(() => undefined);
  }
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
