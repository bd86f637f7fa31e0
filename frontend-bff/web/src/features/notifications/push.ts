// Web Push on this device: the service worker's PushManager subscription, sent to the server.
export type PushKeys = { endpoint: string; p256dh: string; auth: string };

export function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  const raw = atob(padded);
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

/** Ask permission, subscribe with the server's VAPID key and register the subscription. */
export async function registerPush(vapidPublicKey: string, send: (keys: PushKeys) => Promise<boolean>): Promise<"on" | "denied" | "failed"> {
  try {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") return "denied";
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(vapidPublicKey) });
    const json = subscription.toJSON();
    const keys = json.keys ?? {};
    if (!json.endpoint || !keys.p256dh || !keys.auth) return "failed";
    return (await send({ endpoint: json.endpoint, p256dh: keys.p256dh, auth: keys.auth })) ? "on" : "failed";
  } catch {
    return "failed";
  }
}
