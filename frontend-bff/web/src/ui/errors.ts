// Every UserError code as a sentence in the user's language, shown next to its field.
import type { TFunction } from "i18next";

export interface UserErrorLike {
  field?: string | null;
  code: string;
  message: string;
}

export function errorSentence(t: TFunction, error: UserErrorLike): string {
  const key = `errors.${error.code}`;
  const text = t(key, { defaultValue: "" });
  return text || error.message;
}

/** The first error for `field` as a sentence, or null. */
export function fieldError(t: TFunction, errors: readonly UserErrorLike[], field: string): string | null {
  const hit = errors.find((e) => e.field === field);
  return hit ? errorSentence(t, hit) : null;
}

/** A GraphQL transport error (network down, UNAUTHENTICATED...) as a user error. */
export function transportError(error: { networkError?: unknown; graphQLErrors: { message: string; extensions?: Record<string, unknown> }[] } | undefined): UserErrorLike[] {
  if (!error) return [];
  if (error.networkError) return [{ code: "NETWORK", message: "Network error" }];
  return error.graphQLErrors.map((e) => ({ code: String(e.extensions?.["code"] ?? "INTERNAL"), message: e.message }));
}
