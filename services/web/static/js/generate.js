// The form: submit a job, follow its events (queue position, then each step), report the end.

import { ApiError, describe, events, FINAL, getGeneration, submitGeneration } from "./api.js";
import * as format from "./format.js";

const KEEP_JOBS = 4; // finished jobs shown under the form
const RETRY_MS = 1000;

function number(input) {
  const text = input.value.trim();
  return text === "" ? undefined : Number(text);
}

export class GenerateForm {
  constructor({ onFinished }) {
    this.onFinished = onFinished;
    this.form = document.getElementById("generate-form");
    this.prompt = document.getElementById("prompt");
    this.duration = document.getElementById("duration");
    this.seed = document.getElementById("seed");
    this.button = this.form.querySelector('button[type="submit"]');
    this.error = document.getElementById("generate-error");
    this.jobs = document.getElementById("jobs");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault(); // Enter generates; Shift+Enter is a new line
        this.form.requestSubmit();
      }
    });
  }

  showError(message, fields = []) {
    this.error.textContent = message;
    this.error.hidden = !message;
    for (const [name, input] of [["prompt", this.prompt], ["duration", this.duration], ["seed", this.seed]]) {
      if (fields.includes(name)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  async submit() {
    const request = { prompt: this.prompt.value.trim(), duration: number(this.duration), seed: number(this.seed) };
    this.button.disabled = true;
    try {
      const accepted = await submitGeneration(request);
      this.showError("");
      this.follow(accepted, request.prompt);
    } catch (error) {
      const fields = ((error.problem && error.problem.errors) || []).map((item) => item.field);
      this.showError(describe(error), fields);
      const first = { prompt: this.prompt, duration: this.duration, seed: this.seed }[fields[0]];
      if (first) first.focus();
    } finally {
      this.button.disabled = false;
    }
  }

  /** One line under the form per job: its state, a bar and the trail of steps seen. */
  jobItem(prompt) {
    const item = document.createElement("li");
    item.className = "job";
    const title = document.createElement("span");
    title.className = "job-prompt";
    title.textContent = prompt;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `Progress of "${prompt}"`);
    const state = document.createElement("span");
    state.className = "job-state";
    const trail = document.createElement("span");
    trail.className = "job-trail";
    item.append(title, bar, state, trail);
    this.jobs.prepend(item);
    const finished = this.jobs.querySelectorAll("li.job.done");
    for (const old of [...finished].slice(KEEP_JOBS)) old.remove();
    return { item, bar, state, trail, seen: [] };
  }

  show(job, event) {
    const words = format.progress(event);
    job.state.textContent = event.error ? `${words}: ${event.error}` : words;
    job.bar.value = format.fraction(event);
    job.item.dataset.status = event.status;
    if (job.seen[job.seen.length - 1] !== words) {
      job.seen.push(words);
      job.trail.textContent = job.seen.join(" → ");
    }
  }

  async follow(accepted, prompt) {
    const job = this.jobItem(prompt);
    // The answer to the POST is the first state: queued with its position (or already started).
    let last = { ...accepted, step: accepted.status === "pending" ? "queued" : "starting" };
    this.show(job, last);
    while (!FINAL.has(last.status)) {
      try {
        for await (const event of events(accepted.id)) {
          last = event;
          this.show(job, event);
        }
      } catch (error) {
        if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
          job.state.textContent = `${format.progress(last)}; cannot follow it: ${describe(error)}`;
          job.item.classList.add("done");
          return; // refused (no key, gone): retrying would not help
        }
        job.state.textContent = `${format.progress(last)} (reconnecting: ${describe(error)})`;
      }
      if (!FINAL.has(last.status)) {
        // The stream ended early (the server restarted, the network dropped): read the
        // record, then follow again.
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        try {
          last = await getGeneration(accepted.id);
          this.show(job, last);
        } catch {
          /* try the stream again */
        }
      }
    }
    job.item.classList.add("done");
    let record = null;
    try {
      record = await getGeneration(accepted.id);
    } catch (error) {
      job.state.textContent += ` (${describe(error)})`;
      return;
    }
    if (record.status === "completed") job.state.textContent = "Completed: ready to play";
    this.onFinished(record);
  }
}
