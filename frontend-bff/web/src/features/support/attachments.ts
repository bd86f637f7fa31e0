// Support attachments over plain HTTP (bff/support_files.py): GraphQL bodies are capped at
// 1 MiB, files go up to 10 MB. The server decides the type from the content.
import type { SupportMessageFieldsFragment } from "../../gql/graphql";
import type { UserErrorLike } from "../../ui/errors";

export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;

interface UploadAnswer {
  message: { id: string } | null;
  errors: UserErrorLike[];
}

export async function uploadAttachment(ticketId: string, file: File, token: string | null): Promise<UploadAnswer> {
  if (file.size > MAX_ATTACHMENT_BYTES) return { message: null, errors: [{ field: "file", code: "ATTACHMENT_TOO_LARGE", message: "Too large" }] };
  try {
    const res = await fetch(`/support/tickets/${encodeURIComponent(ticketId)}/attachments`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token ?? ""}`, "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" },
      body: file,
    });
    if (res.status === 413) return { message: null, errors: [{ field: "file", code: "ATTACHMENT_TOO_LARGE", message: "Too large" }] };
    if (res.status === 401) return { message: null, errors: [{ code: "UNAUTHENTICATED", message: "Sign in" }] };
    return (await res.json()) as UploadAnswer;
  } catch {
    return { message: null, errors: [{ code: "NETWORK", message: "Network error" }] };
  }
}

/** Fetches the file with the session's token and hands it to the browser as a download. */
export async function downloadAttachment(attachment: NonNullable<SupportMessageFieldsFragment["attachment"]>, token: string | null): Promise<boolean> {
  const res = await fetch(attachment.url, { headers: { Authorization: `Bearer ${token ?? ""}` } });
  if (!res.ok) return false;
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = attachment.filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return true;
}
