"""The help centre's starter set (English and Spanish), written for this platform, and a few
canned replies for the staff side. Loaded by `bourse demo` (saving an article is an upsert by
slug and locale, so loading twice changes nothing)."""

from __future__ import annotations

from models.help_centre import ArticleDraft

ARTICLES: list[ArticleDraft] = [
    # ---- account ----
    ArticleDraft(
        slug="open-an-account", locale="en", category="account",
        title="Opening your account and getting started",
        keywords="sign up register account profile username",
        body="""Sign up with a username, your email address and a password of at least 10
characters (mix letters, numbers and symbols). You are signed in straight away.

## Your profile

Under **Settings** you can set your name, phone number, language (English or Spanish), your
base currency (the currency your portfolio is valued in) and the light or dark theme.

## Verification

Trading and withdrawals need a verified identity. Verification usually takes a few seconds
once your details are complete.""",
    ),
    ArticleDraft(
        slug="open-an-account", locale="es", category="account",
        title="Abrir tu cuenta y empezar",
        keywords="registro registrarse cuenta perfil usuario",
        body="""Regístrate con un nombre de usuario, tu correo electrónico y una contraseña de al
menos 10 caracteres (combina letras, números y símbolos). Entrarás en la cuenta al momento.

## Tu perfil

En **Ajustes** puedes indicar tu nombre, teléfono, idioma (inglés o español), tu moneda base
(la moneda en la que se valora tu cartera) y el tema claro u oscuro.

## Verificación

Para operar y retirar fondos hace falta una identidad verificada. La verificación suele tardar
unos segundos cuando tus datos están completos.""",
    ),
    # ---- funding ----
    ArticleDraft(
        slug="deposits-and-withdrawals", locale="en", category="funding",
        title="Deposits and withdrawals",
        keywords="deposit withdraw cash transfer money bank funding limits",
        body="""Go to **Funds** to add or withdraw cash.

- **Deposits** are credited at once and can be used to trade immediately.
- **Withdrawals** reserve the amount right away (it leaves your buying power) and complete
  shortly afterwards; you can follow their status in the transaction history.
- A single transfer is at most $1,000,000, and daily limits apply to deposits and withdrawals.

Cash reserved by open orders or pending withdrawals shows as *held*; only *available* cash can
be withdrawn or spent.""",
    ),
    ArticleDraft(
        slug="deposits-and-withdrawals", locale="es", category="funding",
        title="Depósitos y retiradas",
        keywords="depósito ingresar retirar retirada efectivo dinero banco límites",
        body="""Ve a **Fondos** para ingresar o retirar efectivo.

- Los **depósitos** se abonan al instante y puedes operar con ellos inmediatamente.
- Las **retiradas** reservan el importe en el momento (deja de contar en tu poder de compra) y
  se completan poco después; puedes seguir su estado en el historial de movimientos.
- Una transferencia es como máximo de 1.000.000 $, y hay límites diarios de depósitos y
  retiradas.

El efectivo reservado por órdenes abiertas o retiradas pendientes aparece como *retenido*; solo
el efectivo *disponible* se puede retirar o gastar.""",
    ),
    # ---- orders ----
    ArticleDraft(
        slug="order-types", locale="en", category="orders",
        title="Order types: market, limit, stop-loss and stop-limit",
        keywords="order buy sell market limit stop loss cancel time in force GTC DAY IOC FOK",
        body="""- **Market**: buy or sell now at the best available price.
- **Limit**: buy at or below, or sell at or above, the price you choose. It waits in the book
  until it fills, you cancel it, or its time in force ends.
- **Stop-loss**: becomes a market order when the price reaches your stop price.
- **Stop-limit**: becomes a limit order when the price reaches your stop price.

Time in force: **GTC** (until cancelled), **DAY** (until today's close), **IOC** (fill what you
can now, cancel the rest), **FOK** (all at once or nothing).

When you place a buy order its cost is held from your cash, so the same money cannot be spent
twice; cancelling an open order releases the hold. Follow fills live under **Orders**.""",
    ),
    ArticleDraft(
        slug="order-types", locale="es", category="orders",
        title="Tipos de orden: a mercado, limitada, stop-loss y stop-limitada",
        keywords="orden comprar vender mercado limitada stop pérdidas cancelar vigencia",
        body="""- **A mercado**: compra o vende ahora al mejor precio disponible.
- **Limitada**: compra a tu precio o por debajo, o vende a tu precio o por encima. Espera en el
  libro hasta que se ejecuta, la cancelas o termina su vigencia.
- **Stop-loss**: se convierte en una orden a mercado cuando el precio alcanza tu precio stop.
- **Stop-limitada**: se convierte en una orden limitada cuando el precio alcanza tu precio stop.

Vigencia: **GTC** (hasta cancelarla), **DAY** (hasta el cierre de hoy), **IOC** (ejecuta lo que
se pueda ahora y cancela el resto), **FOK** (todo de una vez o nada).

Al colocar una compra se retiene su coste de tu efectivo, para que el mismo dinero no se gaste
dos veces; al cancelar una orden abierta se libera. Sigue las ejecuciones en **Órdenes**.""",
    ),
    # ---- market hours ----
    ArticleDraft(
        slug="market-hours", locale="en", category="market-hours",
        title="Market hours and holidays",
        keywords="hours open close trading session holiday weekend crypto 24/7",
        body="""US stocks trade from **09:30 to 16:00 New York time**, Monday to Friday, except
NYSE holidays. Crypto assets such as BTC-USD trade **24 hours a day, 7 days a week**.

While a market is closed, market orders are refused (you will see *market closed*), and limit
orders wait for the next open. DAY orders expire at the close.""",
    ),
    ArticleDraft(
        slug="market-hours", locale="es", category="market-hours",
        title="Horario de mercado y festivos",
        keywords="horario apertura cierre sesión festivo fin de semana cripto 24/7",
        body="""Las acciones de EE. UU. se negocian de **09:30 a 16:00, hora de Nueva York**, de
lunes a viernes, salvo los festivos de la NYSE. Los criptoactivos como BTC-USD se negocian **las
24 horas, los 7 días de la semana**.

Con el mercado cerrado, las órdenes a mercado se rechazan (verás *mercado cerrado*) y las
limitadas esperan a la siguiente apertura. Las órdenes DAY caducan al cierre.""",
    ),
    # ---- fractional shares ----
    ArticleDraft(
        slug="fractional-shares", locale="en", category="fractional-shares",
        title="Fractional shares",
        keywords="fractional fraction partial share dollar amount notional",
        body="""You can buy a **fraction of a share**: instead of a number of shares, enter a
dollar amount (for example *$100 of AAPL*) and the order buys as much as that buys at the
market price. You can also enter a fractional quantity such as 0.25.

Fractions work like whole shares: they are valued live, count towards your returns and can be
sold at any time the market is open. Assets that do not support fractions say so on the order
ticket.""",
    ),
    ArticleDraft(
        slug="fractional-shares", locale="es", category="fractional-shares",
        title="Acciones fraccionadas",
        keywords="fracciones fraccionadas fraccionarias parte de una acción importe fractional",
        body="""Puedes comprar **una fracción de una acción**: en lugar de un número de acciones,
indica un importe en dólares (por ejemplo *100 $ de AAPL*) y la orden compra lo que ese importe
permita al precio de mercado. También puedes indicar una cantidad fraccionaria como 0,25.

Las fracciones funcionan como las acciones enteras: se valoran en directo, cuentan en tu
rentabilidad y puedes venderlas cuando el mercado esté abierto. Los activos que no admiten
fracciones lo indican en la orden.""",
    ),
    # ---- taxes ----
    ArticleDraft(
        slug="taxes-and-cost-basis", locale="en", category="taxes",
        title="Taxes, cost basis and realized gains",
        keywords="tax taxes cost basis FIFO lots realized gains losses 1099",
        body="""Each purchase opens a **tax lot**. When you sell, the oldest lots are sold first
(**FIFO**), and the difference between the sale and the lots' cost is your **realized gain or
loss**, shown on your portfolio with short- or long-term holding periods.

Your holdings show the **cost basis** of the lots you still hold. Keep this information for
your tax return; year-end tax documents are listed under your documents when they are
issued.""",
    ),
    ArticleDraft(
        slug="taxes-and-cost-basis", locale="es", category="taxes",
        title="Impuestos, coste fiscal y ganancias realizadas",
        keywords="impuestos fiscal coste lotes FIFO ganancias pérdidas",
        body="""Cada compra abre un **lote fiscal**. Al vender, se venden primero los lotes más
antiguos (**FIFO**), y la diferencia entre la venta y el coste de los lotes es tu **ganancia o
pérdida realizada**, que ves en tu cartera con su plazo corto o largo.

Tus posiciones muestran el **coste** de los lotes que conservas. Guarda esta información para
tu declaración; los documentos fiscales de fin de año aparecen en tus documentos cuando se
emiten.""",
    ),
    # ---- security ----
    ArticleDraft(
        slug="account-security", locale="en", category="security",
        title="Keeping your account secure: two-factor sign-in and recovery codes",
        keywords="security 2FA two-factor authenticator TOTP recovery codes password reset locked",
        body="""Turn on **two-factor sign-in** under **Settings**: scan the QR code with an
authenticator app and confirm with a code. You then get ten single-use **recovery codes**:
keep them somewhere safe; each one signs you in once if you lose your phone.

- Forgot your password? Use *Forgot password* on the sign-in page: the emailed link works once,
  for 30 minutes, and signs you out everywhere.
- After 5 wrong passwords the account is locked for 15 minutes.
- Bourse staff will **never** ask for your password, two-factor codes or recovery codes.""",
    ),
    ArticleDraft(
        slug="account-security", locale="es", category="security",
        title="Protege tu cuenta: verificación en dos pasos y códigos de recuperación",
        keywords="seguridad 2FA dos pasos autenticador códigos de recuperación contraseña bloqueo",
        body="""Activa la **verificación en dos pasos** en **Ajustes**: escanea el código QR con
una app de autenticación y confirma con un código. Recibirás diez **códigos de recuperación**
de un solo uso: guárdalos en un lugar seguro; cada uno te permite entrar una vez si pierdes el
móvil.

- ¿Olvidaste la contraseña? Usa *He olvidado la contraseña* en la página de acceso: el enlace
  del correo funciona una vez, durante 30 minutos, y cierra todas tus sesiones.
- Tras 5 contraseñas incorrectas la cuenta se bloquea 15 minutos.
- El personal de Bourse **nunca** te pedirá tu contraseña, tus códigos ni tus códigos de
  recuperación.""",
    ),
]  # fmt: skip

MACROS: list[tuple[str, str]] = [
    ("Greeting", "Hi, thanks for reaching out. I'm looking into this for you now."),
    (
        "Market closed",
        "US stocks trade 09:30-16:00 New York time on weekdays; outside those hours market "
        "orders are refused and limit orders wait for the open. Crypto trades 24/7.",
    ),
    (
        "Withdrawal pending",
        "Your withdrawal is on its way: the amount is held while it completes, and the status "
        "in Funds changes to completed when it is done.",
    ),
    ("Closing", "Is there anything else I can help with? If not, I'll mark this resolved."),
]
