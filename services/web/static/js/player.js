// The player: the waveform drawn on a canvas from the API's peaks (audiowaveform JSON v2),
// an <audio> element streaming the file (the browser asks for byte ranges), seek by click.

import { audioPath, describe, getPeaks } from "./api.js";
import { withToken } from "./auth.js";
import * as format from "./format.js";

const FULL_SCALE = 32767; // bits: 16
const SEEK_STEP_S = 5;

export class Player {
  constructor() {
    this.audio = document.getElementById("audio");
    this.canvas = document.getElementById("waveform");
    this.button = document.getElementById("play");
    this.label = this.button.querySelector(".label");
    this.download = document.getElementById("download");
    this.message = document.getElementById("player-message");
    this.current = document.getElementById("current-time");
    this.total = document.getElementById("total-time");
    this.item = null;
    this.peaks = null; // { lows, highs } per peaks pixel, -1..1, channels merged
    this.controller = null;
    this.frame = 0;

    this.button.addEventListener("click", () => this.toggle());
    this.canvas.addEventListener("click", (event) => {
      const box = this.canvas.getBoundingClientRect();
      this.seek((event.clientX - box.left) / box.width);
    });
    this.canvas.addEventListener("keydown", (event) => this.onKey(event));
    const audio = this.audio;
    audio.addEventListener("play", () => this.setPlaying(true));
    audio.addEventListener("pause", () => this.setPlaying(false));
    audio.addEventListener("ended", () => this.setPlaying(false));
    audio.addEventListener("loadedmetadata", () => this.update());
    audio.addEventListener("durationchange", () => this.update());
    audio.addEventListener("timeupdate", () => this.update());
    audio.addEventListener("seeked", () => this.update());
    audio.addEventListener("error", () => {
      if (this.item && audio.getAttribute("src")) this.say("The audio could not be loaded.");
    });
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  get idle() {
    return !this.item || this.audio.paused;
  }

  /** Show a library item; only a completed one has audio. */
  load(item) {
    this.item = item;
    document.getElementById("player-empty").hidden = true;
    document.getElementById("player-body").hidden = false;
    document.getElementById("track-title").textContent = item.prompt;
    document.getElementById("track-facts").textContent = [
      format.bpm(item.bpm) + " BPM", format.key(item.key, item.camelot), format.lufs(item.loudness_lufs),
      format.dbtp(item.true_peak_dbtp),
    ].join("   ");
    if (this.controller) this.controller.abort();
    this.audio.pause();
    this.peaks = null;
    const playable = item.status === "completed";
    this.button.disabled = !playable;
    this.download.hidden = !playable;
    this.say(playable ? "" : `This generation is ${item.status}${item.error ? `: ${item.error}` : ""}.`);
    if (!playable) {
      this.audio.removeAttribute("src");
      this.audio.load();
      this.update();
      return;
    }
    const path = audioPath(item.id);
    this.audio.src = withToken(path);
    this.download.href = withToken(`${path}?download=true`);
    this.download.setAttribute("download", item.file_name || "");
    this.update();
    this.fetchPeaks(item);
  }

  async fetchPeaks(item) {
    this.controller = new AbortController();
    const width = Math.max(200, Math.round(this.canvas.clientWidth * (window.devicePixelRatio || 1)));
    try {
      const peaks = await getPeaks(item.id, Math.min(width, 4000), this.controller.signal);
      if (this.item !== item) return;
      this.peaks = merge(peaks);
      this.draw();
    } catch (error) {
      if (error.name !== "AbortError" && this.item === item) this.say(`No waveform: ${describe(error)}`);
    }
  }

  duration() {
    const seconds = this.audio.duration;
    if (Number.isFinite(seconds) && seconds > 0) return seconds;
    return this.item ? this.item.duration_seconds || 0 : 0;
  }

  toggle() {
    if (!this.item || this.button.disabled) return;
    if (this.audio.paused) {
      this.audio.play().catch((error) => {
        if (error.name !== "AbortError") this.say(`Cannot play: ${error.message}`);
      });
    } else {
      this.audio.pause();
    }
  }

  /** Jump to a fraction (0..1) of the track. */
  seek(fraction) {
    const duration = this.duration();
    if (!this.item || this.button.disabled || !duration) return;
    this.audio.currentTime = Math.min(Math.max(fraction, 0), 1) * duration;
    this.update();
  }

  onKey(event) {
    const now = this.audio.currentTime;
    const duration = this.duration();
    const to = { ArrowLeft: now - SEEK_STEP_S, ArrowRight: now + SEEK_STEP_S, Home: 0, End: duration }[event.key];
    if (to === undefined || !duration) return;
    event.preventDefault();
    this.seek(to / duration);
  }

  setPlaying(playing) {
    this.label.textContent = playing ? "Pause" : "Play";
    this.button.classList.toggle("playing", playing);
    cancelAnimationFrame(this.frame);
    if (playing) {
      const tick = () => {
        this.update();
        this.frame = requestAnimationFrame(tick);
      };
      this.frame = requestAnimationFrame(tick);
    }
    this.update();
  }

  say(text) {
    this.message.textContent = text;
  }

  update() {
    const duration = this.duration();
    const time = this.item && this.audio.getAttribute("src") ? this.audio.currentTime : 0;
    this.current.textContent = format.clock(time);
    this.total.textContent = format.clock(duration);
    this.canvas.setAttribute("aria-valuemax", String(Math.round(duration)));
    this.canvas.setAttribute("aria-valuenow", String(Math.round(time)));
    this.canvas.setAttribute("aria-valuetext", `${format.clock(time)} of ${format.clock(duration)}`);
    this.draw(duration ? time / duration : 0);
  }

  draw(played = this.duration() ? this.audio.currentTime / this.duration() : 0) {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    const playedX = Math.round(Math.min(Math.max(played, 0), 1) * width);
    const state = `${width}x${height}:${playedX}`;
    if (this.drawn === state && this.drawnPeaks === this.peaks) return; // nothing moved
    this.drawn = state;
    this.drawnPeaks = this.peaks;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const colours = this.colours || (this.colours = colourScheme(canvas));
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, width, height);
    const middle = height / 2;
    if (!this.peaks) {
      context.fillStyle = colours.idle;
      context.fillRect(0, middle - ratio / 2, width, ratio);
      return;
    }
    const { lows, highs } = this.peaks;
    const count = lows.length;
    for (let x = 0; x < width; x += 1) {
      const from = Math.floor((x * count) / width);
      const to = Math.max(from + 1, Math.floor(((x + 1) * count) / width));
      let low = 0;
      let high = 0;
      for (let i = from; i < to && i < count; i += 1) {
        if (lows[i] < low) low = lows[i];
        if (highs[i] > high) high = highs[i];
      }
      context.fillStyle = x < playedX ? colours.played : colours.wave;
      context.fillRect(x, middle - high * middle, 1, Math.max(ratio, (high - low) * middle));
    }
    context.fillStyle = colours.playhead;
    context.fillRect(Math.min(playedX, width - ratio), 0, ratio, height);
  }
}

function colourScheme(canvas) {
  const style = getComputedStyle(canvas);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return { idle: read("--wave-idle", "#3a4152"), wave: read("--wave", "#8b93a7"),
           played: read("--wave-played", "#5eead4"), playhead: read("--playhead", "#ffffff") };
}

/** audiowaveform JSON v2 (min, max per channel per pixel, interleaved) -> one min and one
 * max per pixel over all channels, as fractions of full scale. */
export function merge(peaks) {
  const channels = peaks.channels || 1;
  const length = peaks.length || Math.floor(peaks.data.length / (2 * channels));
  const scale = peaks.bits === 8 ? 127 : FULL_SCALE;
  const lows = new Float32Array(length);
  const highs = new Float32Array(length);
  for (let pixel = 0; pixel < length; pixel += 1) {
    let low = 0;
    let high = 0;
    for (let channel = 0; channel < channels; channel += 1) {
      const at = 2 * (pixel * channels + channel);
      low = Math.min(low, peaks.data[at] / scale);
      high = Math.max(high, peaks.data[at + 1] / scale);
    }
    lows[pixel] = low;
    highs[pixel] = high;
  }
  return { lows, highs };
}
