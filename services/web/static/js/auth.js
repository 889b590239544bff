// The API key: kept in localStorage, asked for (once) when the API answers 401.

const STORAGE_KEY = "dgx-music.api-key";
let memoryKey = ""; // where the key lives when the browser refuses storage
let pending = null; // one dialog for every caller that meets a 401 at the same time

export function apiKey() {
  try {
    return localStorage.getItem(STORAGE_KEY) || memoryKey;
  } catch {
    return memoryKey;
  }
}

export function setApiKey(key) {
  memoryKey = key;
  try {
    if (key) localStorage.setItem(STORAGE_KEY, key);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage disabled: the key lasts as long as the page */
  }
}

/** A same-origin URL with ?access_token= when a key is set (for <audio src> and downloads). */
export function withToken(path) {
  const key = apiKey();
  if (!key) return path;
  const url = new URL(path, location.origin);
  url.searchParams.set("access_token", key);
  return url.pathname + url.search;
}

/**
 * Ask for the key in the "API key" dialog; resolves to the new key, or "" when the user
 * cancels. Concurrent callers share one dialog. `refusedKey` is the key the server refused:
 * when another caller has replaced it meanwhile, the new one is returned without asking.
 */
export function askForKey(reason, refusedKey) {
  const known = apiKey();
  if (known && known !== refusedKey) return Promise.resolve(known);
  if (pending) return pending;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  document.getElementById("key-reason").textContent = reason || "This service needs an API key.";
  input.value = "";
  pending = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      pending = null;
      const key = dialog.returnValue === "save" ? input.value.trim() : "";
      if (key) setApiKey(key);
      resolve(key);
    }, { once: true });
  });
  dialog.returnValue = "";
  document.getElementById("key-cancel").onclick = () => dialog.close("cancel");
  dialog.showModal();
  input.focus();
  return pending;
}
