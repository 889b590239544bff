// The HTTP API v1 client: the page uses nothing that other clients cannot.
// Errors are RFC 9457 problems; a 401 asks for the key (once) and retries.

import { apiKey, askForKey } from "./auth.js";

const BASE = "/api/v1/generations";
export const FINAL = new Set(["completed", "failed", "cancelled"]);

export class ApiError extends Error {
  constructor(status, problem, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

async function problemOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    /* not JSON (a proxy's page, say) */
  }
  return { title: response.statusText, status: response.status, detail: `HTTP ${response.status} ${response.statusText}` };
}

function sentence(text) {
  const trimmed = String(text).trim();
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + (/[.!?]$/.test(trimmed) ? "" : ".");
}

/** What went wrong, in words, for a person. */
export function describe(error) {
  if (error instanceof ApiError) {
    const text = sentence(error.problem.detail || error.problem.title || error.message);
    if (error.status === 429) return `${text} ${error.retryAfter ? `Try again in ${error.retryAfter} s.` : "Try again later."}`;
    return text;
  }
  if (error && error.name === "TypeError") return "The service did not answer. Is dgx-music serve running?";
  return sentence((error && error.message) || error);
}

/** fetch() with the key; resolves to an ok Response, rejects with ApiError. */
export async function apiFetch(path, options = {}) {
  for (;;) {
    const key = apiKey();
    const headers = new Headers(options.headers || {});
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...options, headers });
    if (response.ok) return response;
    const problem = await problemOf(response);
    if (response.status === 401) {
      const reason = key
        ? `The saved API key was refused (${problem.detail}). Enter a valid key.`
        : "This service needs an API key. Enter one of its keys to go on.";
      if (await askForKey(reason, key)) continue;
    }
    const retryAfter = response.headers.get("Retry-After");
    throw new ApiError(response.status, problem, retryAfter === null ? null : Number(retryAfter));
  }
}

async function json(path, options) {
  return (await apiFetch(path, options)).json();
}

export function submitGeneration({ prompt, duration, seed }) {
  const body = { prompt };
  if (duration !== undefined && duration !== null) body.duration = duration;
  if (seed !== undefined && seed !== null) body.seed = seed;
  return json(BASE, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

/** A page of summaries, newest first: { items, next_cursor }. */
export function listGenerations(filters, { cursor = null, limit = 50, signal } = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value !== "" && value !== null && value !== undefined) query.set(name, value);
  }
  query.set("limit", String(limit));
  if (cursor) query.set("cursor", cursor);
  return json(`${BASE}?${query}`, { signal });
}

export const getGeneration = (id, signal) => json(`${BASE}/${encodeURIComponent(id)}`, { signal });

export const getPeaks = (id, points, signal) =>
  json(`${BASE}/${encodeURIComponent(id)}/peaks?points=${points}`, { signal });

export const audioPath = (id) => `${BASE}/${encodeURIComponent(id)}/audio`;

/**
 * The job's events (Server-Sent Events) as an async iterator of
 * { id, status, step, queue_position, error }, read with fetch() so that the key can go in
 * the Authorization header (EventSource cannot send one). Ends when the server ends the
 * stream, normally after a final status.
 */
export async function* events(id, signal) {
  const response = await apiFetch(`${BASE}/${encodeURIComponent(id)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
    cache: "no-store",
  });
  yield* parseEventStream(response.body);
}

/** The `data` of each event of a text/event-stream body, parsed as JSON (WHATWG HTML 9.2.6). */
export async function* parseEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A "\r" at the end may be the first half of "\r\n": it waits for the next chunk.
      const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(cut); // an incomplete line waits too
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield JSON.parse(data.join("\n"));
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        } // comments (": keep-alive"), id:, event: and retry: need nothing here
      }
    }
    finished = true;
  } finally {
    if (!finished) reader.cancel().catch(() => {}); // the caller stopped early: close the stream
    reader.releaseLock();
  }
}
