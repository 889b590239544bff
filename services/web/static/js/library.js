// The library: newest first, searched and filtered by the API, a page at a time
// (cursor paging: the page never loads the whole history).

import { describe, listGenerations } from "./api.js";
import * as format from "./format.js";

const PAGE = 50;
const DEBOUNCE_MS = 80;
// Camelot wheel order; the API takes the code as a key filter.
const KEYS = [
  ["1A", "G# minor"], ["1B", "B major"], ["2A", "Eb minor"], ["2B", "F# major"],
  ["3A", "Bb minor"], ["3B", "Db major"], ["4A", "F minor"], ["4B", "Ab major"],
  ["5A", "C minor"], ["5B", "Eb major"], ["6A", "G minor"], ["6B", "Bb major"],
  ["7A", "D minor"], ["7B", "F major"], ["8A", "A minor"], ["8B", "C major"],
  ["9A", "E minor"], ["9B", "G major"], ["10A", "B minor"], ["10B", "D major"],
  ["11A", "F# minor"], ["11B", "A major"], ["12A", "C# minor"], ["12B", "E major"],
];

function cell(text, className) {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

export class Library {
  constructor({ onSelect }) {
    this.onSelect = onSelect;
    this.table = document.getElementById("library");
    this.body = document.getElementById("library-rows");
    this.error = document.getElementById("library-error");
    this.empty = document.getElementById("library-empty");
    this.more = document.getElementById("load-more");
    this.inputs = {
      q: document.getElementById("search"),
      key: document.getElementById("key-filter"),
      bpm_min: document.getElementById("bpm-min"),
      bpm_max: document.getElementById("bpm-max"),
      status: document.getElementById("status-filter"),
    };
    this.items = new Map(); // id -> summary of the rows shown
    this.cursor = null;
    this.selected = null;
    this.sequence = 0; // only the newest request may draw
    this.controller = null;
    this.loadingMore = false;
    this.timer = 0;

    for (const [code, name] of KEYS) this.inputs.key.add(new Option(`${code} · ${name}`, code));
    const later = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), DEBOUNCE_MS);
    };
    for (const name of ["q", "bpm_min", "bpm_max"]) this.inputs[name].addEventListener("input", later);
    for (const name of ["key", "status"]) this.inputs[name].addEventListener("change", () => this.reload());
    document.getElementById("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.timer);
      this.reload();
    });
    this.body.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-id]");
      if (row) this.select(row.dataset.id);
    });
    this.more.addEventListener("click", () => this.loadMore());
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
      }, { rootMargin: "400px" }).observe(document.getElementById("library-sentinel"));
    }
  }

  filters() {
    const value = (name) => this.inputs[name].value.trim();
    return { q: value("q"), key: value("key"), bpm_min: value("bpm_min"), bpm_max: value("bpm_max"),
             status: value("status") };
  }

  filtered() {
    return Object.values(this.filters()).some((value) => value !== "");
  }

  /** The first page for the current filters, replacing the rows. */
  async reload() {
    clearTimeout(this.timer);
    const sequence = ++this.sequence;
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    const filters = this.filters();
    this.table.setAttribute("aria-busy", "true");
    try {
      const page = await listGenerations(filters, { limit: PAGE, signal: this.controller.signal });
      if (sequence !== this.sequence) return;
      this.items.clear();
      this.body.replaceChildren(...page.items.map((item) => this.row(item)));
      this.cursor = page.next_cursor;
      this.showError("");
      this.rendered(filters);
    } catch (error) {
      if (error.name === "AbortError" || sequence !== this.sequence) return;
      this.showError(describe(error));
      this.table.setAttribute("aria-busy", "false");
    }
  }

  /** The next page, appended (the "Load more" button, or scrolling near the end). */
  async loadMore() {
    if (!this.cursor || this.loadingMore || !this.items.size) return;
    this.loadingMore = true;
    const sequence = this.sequence;
    const signal = this.controller ? this.controller.signal : undefined;
    try {
      const page = await listGenerations(this.filters(), { cursor: this.cursor, limit: PAGE, signal });
      if (sequence !== this.sequence) return;
      this.body.append(...page.items.filter((item) => !this.items.has(item.id)).map((item) => this.row(item)));
      this.cursor = page.next_cursor;
      this.rendered(this.filters());
    } catch (error) {
      if (error.name !== "AbortError" && sequence === this.sequence) this.showError(describe(error));
    } finally {
      this.loadingMore = false;
    }
  }

  rendered(filters) {
    this.table.setAttribute("aria-busy", "false");
    this.table.dataset.query = JSON.stringify(filters);
    this.empty.hidden = this.items.size > 0;
    this.more.hidden = !this.cursor;
    // Marked at the next frame, the one that paints these rows (benchmarks/bench_web.py reads it).
    requestAnimationFrame(() => performance.mark("dgx:library-rendered", { detail: { filters, rows: this.items.size } }));
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  row(item) {
    this.items.set(item.id, item);
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    tr.dataset.status = item.status;
    if (item.id === this.selected) tr.setAttribute("aria-current", "true");

    const prompt = document.createElement("td");
    prompt.className = "c-prompt";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "track";
    button.textContent = item.prompt;
    button.title = item.prompt;
    const facts = document.createElement("span"); // what the hidden columns say, on a phone
    facts.className = "sub";
    facts.setAttribute("aria-hidden", "true");
    facts.textContent = [format.date(item.created_at, { short: true }), format.lufs(item.loudness_lufs),
                         item.status === "completed" ? "" : format.progress(item)].filter(Boolean).join(" · ");
    prompt.append(button, facts);

    const status = cell(format.progress(item), "c-status");
    if (item.error) status.title = item.error;
    tr.append(
      prompt,
      cell(format.date(item.created_at), "c-date"),
      cell(format.clock(item.duration_seconds), "c-num c-length"),
      cell(format.bpm(item.bpm), "c-num c-bpm"),
      cell(format.key(item.key, item.camelot), "c-key"),
      cell(format.lufs(item.loudness_lufs), "c-num c-lufs"),
      cell(format.dbtp(item.true_peak_dbtp), "c-num c-peak"),
      status,
    );
    return tr;
  }

  /** Show a generation at the top (a new one) or update its row; a filtered view reloads. */
  upsert(item) {
    const existing = this.body.querySelector(`tr[data-id="${CSS.escape(item.id)}"]`);
    if (existing) {
      existing.replaceWith(this.row(item));
    } else if (this.filtered()) {
      this.reload();
      return;
    } else {
      this.body.prepend(this.row(item));
    }
    this.empty.hidden = true;
  }

  select(id) {
    const item = this.items.get(id);
    if (!item || id === this.selected) return; // the same track again: keep playing
    this.selected = id;
    for (const row of this.body.querySelectorAll("tr[aria-current]")) row.removeAttribute("aria-current");
    const row = this.body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (row) row.setAttribute("aria-current", "true");
    this.onSelect(item);
  }
}
