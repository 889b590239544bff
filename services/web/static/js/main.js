// The page: the generate form, the library and the player, wired together.

import { GenerateForm } from "./generate.js";
import { Library } from "./library.js";
import { Player } from "./player.js";

const player = new Player();
const library = new Library({ onSelect: (item) => player.load(item) });

new GenerateForm({
  onFinished(record) {
    library.upsert(record); // a record has every field of a library summary
    if (record.status === "completed" && player.idle) library.select(record.id);
  },
});

// Space plays and pauses, except where it types or presses something else (a library row's
// button is the track itself: Space plays it).
document.addEventListener("keydown", (event) => {
  if (event.key !== " " || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, button:not(.track), a, [contenteditable], dialog")) return;
  event.preventDefault();
  player.toggle();
});

library.reload();
