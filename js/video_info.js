// Load Video (IA_LoadVideo) says what it will load before a run: the source's size, fps and frame
// count, and the frames, size and fps its knobs give (GET /insertanywhere/video_info, which probes the
// file's header with the core and applies the node's own rules). Updated when the file or a knob changes.
// The line is a widget after all others, never serialized, so widgets_values keep their order.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { videoInfoQuery, videoInfoText } from "./input_logic.js";

const NODE_TYPE = "IA_LoadVideo";
const WIDGET_NAME = "ia_video_info";
const ROUTE = "/insertanywhere/video_info";
const WATCHED = ["file", "start_frame", "frame_cap", "stride", "max_side", "fit", "frame_count"];
const LINE_PX = 15; // line height of the 12 px text
const BOX_HEIGHT = 2 * LINE_PX + 8; // two lines with padding and border
const MARGIN = 4; // the DOM widget's margin around the box (the frontend's default is 10)
const SETTLE_MS = 150; // one request after a burst of changes (typing a number)

function chain(object, key, after) {
  const before = object[key];
  object[key] = function (...args) {
    const r = before?.apply(this, args);
    after();
    return r;
  };
}

/** Grow the node to fit its widgets (a saved, smaller size would squash the info line). */
function growToFit(node) {
  const [w, h] = node.computeSize?.() ?? node.size;
  if (w > node.size[0] || h > node.size[1]) node.setSize([Math.max(w, node.size[0]), Math.max(h, node.size[1])]);
}

function attach(node) {
  const box = document.createElement("div");
  box.className = "ia-video-info";
  Object.assign(box.style, {
    font: "12px sans-serif", lineHeight: `${LINE_PX}px`, whiteSpace: "pre-wrap", overflowWrap: "anywhere", color: "var(--input-text, #ddd)",
    background: "rgba(0,0,0,0.25)", borderRadius: "4px", padding: "3px 6px", boxSizing: "border-box",
    overflow: "hidden",
  });
  const widget = node.addDOMWidget(WIDGET_NAME, "ia-video-info", box, {
    serialize: false, hideOnZoom: false, getValue: () => undefined, setValue: () => {}, margin: MARGIN,
    getMinHeight: () => BOX_HEIGHT + 2 * MARGIN, getMaxHeight: () => BOX_HEIGHT + 2 * MARGIN,
  });
  widget.serialize = false;
  let timer = null;
  let shown = null; // the query whose answer is on the node
  let seq = 0;

  const show = (text, isError = false) => {
    box.textContent = text;
    box.title = text;
    box.style.color = isError ? "#ff8a80" : "var(--input-text, #ddd)";
    box.dataset.state = isError ? "error" : "ok";
  };
  const value = (name) => node.widgets?.find((w) => w.name === name)?.value;
  const update = async () => {
    const query = videoInfoQuery(value("file"), Object.fromEntries(WATCHED.map((n) => [n, value(n)])));
    if (!query) {
      shown = null;
      show("No video picked: choose one to upload, or drop a video on the node.");
      return;
    }
    if (query === shown) return;
    const mine = ++seq;
    let res, body;
    try {
      res = await api.fetchApi(`${ROUTE}?${query}`);
      body = await res.json();
    } catch (err) {
      body = { error: `Video info request failed: ${err.message}` };
    }
    if (mine !== seq) return; // a newer request is on its way
    shown = query;
    if (res?.ok) show(videoInfoText(body));
    else show(body?.error ?? `Video info failed (${res?.status})`, true);
    box.dataset.query = query;
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(update, SETTLE_MS);
  };
  for (const w of node.widgets ?? []) if (WATCHED.includes(w.name)) chain(w, "callback", schedule);
  chain(node, "onConfigure", () => {
    growToFit(node);
    schedule(); // a loaded workflow sets the values without callbacks
  });
  chain(node, "onWidgetChanged", schedule); // newer frontends report every widget edit here
  node.videoInfo = { refresh: () => { shown = null; return update(); }, element: box };
  growToFit(node);
  schedule();
}

app.registerExtension({
  name: "InsertAnywhere.VideoInfo",
  async nodeCreated(node) {
    if (node.comfyClass === NODE_TYPE) attach(node);
  },
});
