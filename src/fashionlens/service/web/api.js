// The page's only way to the service: JSON in and out, and every failure turned into a sentence for a person.

const TIMEOUT_MS = 60000;
const TOKEN_KEY = "fashionlens-token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The API token, kept for this tab's session only (sessionStorage: gone when the tab closes, never sent to another
// site). Every request carries it; a 401 asks the page for a new one ("fashionlens:token-needed").
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

const authHeaders = () => (token.get() ? { Authorization: `Bearer ${token.get()}` } : {});

export async function api(path, { method = "GET", json, form, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  } catch (error) {
    if (error.name === "AbortError" && signal?.aborted) throw error;
    if (error.name === "TimeoutError") throw new ApiError(0, "timeout", "The server took too long to answer. Try again in a moment.");
    throw new ApiError(0, "unreachable", "The fashionlens server cannot be reached. Check that it is still running, then try again.");
  }
  if (response.status === 204) return null;
  let document = null;
  try {
    document = await response.json();
  } catch {
    if (response.ok) throw new ApiError(response.status, "bad_response", "The server sent an answer this page cannot read.");
  }
  if (!response.ok) {
    const error = document?.error || {};
    if (response.status === 401) window.dispatchEvent(new Event("fashionlens:token-needed"));
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || `The server answered ${response.status}.`);
  }
  return document;
}

// What a person should read for an error: the server's own message, with the why and what to do in front.
export function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error.message || error}`;
  const lead = {
    not_an_image: "That file is not an image the server can read.",
    invalid_image: "That image is damaged or cannot be decoded.",
    image_too_large: "That image is too large.",
    too_large: "That is too large to send.",
    url_invalid: "That URL cannot be used.",
    url_forbidden: "The server refused to fetch that URL.",
    fetch_failed: "The image at that URL could not be fetched.",
    fetch_timeout: "Fetching that URL took too long.",
    http_status: "The site at that URL answered with an error.",
    unauthorized: "This needs the API token: enter it in the token prompt at the top and try again.",
    forbidden: "This token can only read: analysing and changing the catalogue need a read-write token.",
    too_many_requests: "Too many requests from you in a short time: wait a moment.",
    busy: "The server is busy with other photos: try again in a few seconds.",
    not_found: "That no longer exists.",
  }[error.code];
  if (error.code === "unreachable" || error.code === "timeout" || error.code === "bad_response") return error.message;
  return lead ? `${lead} (${error.message})` : error.message;
}

export function imageUrl(kind, id, sha256, size) {
  const query = new URLSearchParams();
  if (size) query.set("size", size);
  if (sha256) query.set("v", sha256.slice(0, 16));
  return `/v1/${kind}/${id}/image?${query}`;
}

// An <img> cannot send the token: with one, the image is fetched with it and shown from a blob URL.
export function showImage(img, url) {
  if (!token.get() || !url.startsWith("/v1/")) {
    img.src = url;
    return img;
  }
  fetch(url, { headers: authHeaders() })
    .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(`HTTP ${response.status}`))))
    .then((blob) => {
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
      img.src = URL.createObjectURL(blob);
    })
    .catch(() => img.classList.add("broken"));
  return img;
}
