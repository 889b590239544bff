// How numbers and dates read on the page.

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const shortDateFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** 83.4 -> "1:23" */
export function clock(seconds) {
  if (!isNumber(seconds) || seconds < 0) return "0:00";
  const whole = Math.floor(seconds);
  const minutes = Math.floor(whole / 60);
  return `${minutes}:${String(whole % 60).padStart(2, "0")}`;
}

export function date(iso, { short = false } = {}) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return (short ? shortDateFormat : dateFormat).format(when);
}

export const bpm = (value) => (isNumber(value) ? String(Math.round(value * 10) / 10) : "–");

/** "A minor" + "8A" -> "A minor · 8A" */
export const key = (name, camelot) => (name ? (camelot ? `${name} · ${camelot}` : name) : "–");

export const lufs = (value) => (isNumber(value) ? `${value.toFixed(1)} LUFS` : "–");

export const dbtp = (value) => (isNumber(value) ? `${value.toFixed(1)} dBTP` : "–");

const STEPS = {
  queued: "Queued",
  starting: "Starting",
  generate: "Generating",
  export: "Exporting",
  analyse: "Analysing",
  complete: "Finishing",
};

/** A job's state in words: "Queued (position 2)", "Generating", "Completed". */
export function progress({ status, step, queue_position: position }) {
  if (status === "pending") return position ? `Queued (position ${position})` : "Queued";
  if (status === "processing") return STEPS[step] || "Running";
  return status.charAt(0).toUpperCase() + status.slice(1);
}

const ORDER = ["queued", "starting", "generate", "analyse", "export", "complete"];

/** 0..1: how far along a job is. */
export function fraction({ status, step }) {
  if (status === "completed") return 1;
  if (status === "pending") return 0.02;
  const index = ORDER.indexOf(step);
  return index < 0 ? 0.1 : (index + 0.5) / ORDER.length;
}
