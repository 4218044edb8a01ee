// Interactive 4D placement editor inside the Place Object node (IA_PlaceObject).
//
// A canvas shows frame 0 with the object drawn at the current placement: drag to move the
// anchor (click elsewhere to jump there), drag the square handle or use the wheel to scale,
// sliders for yaw / pitch / roll, offset X/Y/Z, height and top-K, and a frame scrubber that
// shows the server's preview of the propagated, occluded object on later frames.
// The state is the node's `placement` widget (the placement JSON): it is saved with the
// workflow and sent with the prompt. Until the node has run once the server has no scene
// for it, and the editor steps aside, leaving the plain JSON widget. The server keeps a scene
// per workflow (the graph's id, sent with every prompt) and node, so a workflow that never
// ran never shows another one's scene.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import * as PM from "./placement_math.js";

const NODE_TYPE = "IA_PlaceObject";
const WIDGET_NAME = "placement_editor";
const ROUTE = "/insertanywhere/editor";
const PREVIEW_MAX_SIDE = 832; // full size for Wan's 832x480; larger videos are previewed smaller
const CONTROLS_HEIGHT = 150; // until measured
const STATUS_HEIGHT = 22; // one line, until measured (the status wraps, never cut)
const JSON_MIN_HEIGHT = 12 * 15; // the placement JSON box keeps about 12 lines of its 11 px text readable
const HANDLE_PX = 7; // handle size on screen (CSS px)
const SURFACES_KEPT = 64;

const editors = new Set();

const CONTROLS = [
  { key: "height_px", label: "height px", min: 4, max: 1000, step: 0.5 },
  { key: "yaw_deg", label: "yaw °", min: -180, max: 180, step: 1 },
  { key: "pitch_deg", label: "pitch °", min: -90, max: 90, step: 1 },
  { key: "roll_deg", label: "roll °", min: -180, max: 180, step: 1 },
  { key: "offset.0", label: "offset X", min: -2, max: 2, step: 0.01 },
  { key: "offset.1", label: "offset Y", min: -2, max: 2, step: 0.01 },
  { key: "offset.2", label: "offset Z", min: -2, max: 2, step: 0.01 },
  { key: "top_k", label: "top-K", min: 3, max: 512, step: 1 },
];

const STYLE = `
.ia-editor { display: flex; flex-direction: column; gap: 3px; font: 11px sans-serif; color: var(--input-text, #ddd);
  box-sizing: border-box; padding: 2px 4px; overflow: hidden; }
.ia-editor .ia-status { flex: none; min-height: ${STATUS_HEIGHT - 4}px; white-space: normal; overflow-wrap: anywhere;
  line-height: 14px; opacity: 0.85; }
.ia-editor .ia-status.ia-error { color: #ff8a80; opacity: 1; }
.ia-editor canvas { flex: 1 1 auto; min-height: 0; width: 100%; object-fit: contain; background: #111;
  touch-action: none; cursor: crosshair; }
.ia-editor .ia-controls { display: grid; grid-template-columns: 64px 1fr 58px; gap: 1px 6px; align-items: center; }
.ia-editor .ia-controls input[type=range] { width: 100%; margin: 0; height: 14px; }
.ia-editor .ia-controls input[type=number] { width: 56px; background: var(--comfy-input-bg, #222);
  color: inherit; border: 1px solid #555; border-radius: 3px; font-size: 11px; padding: 0 2px; }
.ia-editor.ia-unavailable canvas, .ia-editor.ia-unavailable .ia-controls { display: none; }
`;

function injectStyle() {
  if (document.getElementById("ia-editor-style")) return;
  const style = document.createElement("style");
  style.id = "ia-editor-style";
  style.textContent = STYLE;
  document.head.appendChild(style);
}

function getKey(placement, key) {
  const [name, index] = key.split(".");
  return index === undefined ? placement[name] : placement[name][Number(index)];
}

function changeFor(placement, key, value) {
  const [name, index] = key.split(".");
  if (index === undefined) return { [name]: name === "top_k" ? Math.round(value) : value };
  const list = [...placement[name]];
  list[Number(index)] = value;
  return { [name]: list };
}

class PlacementEditor {
  constructor(node, textWidget) {
    this.node = node;
    this.textWidget = textWidget;
    this.info = null; // scene info from the server (null: no scene, plain JSON only)
    this.token = null;
    this.frame0 = null; // ImageBitmap of frame 0
    this.placement = null;
    this.frame = 0;
    this.surfaces = new Map(); // surfaceKey -> surface JSON
    this.lastSurface = null;
    this.surfaceInFlight = false;
    this.preview = null; // {bitmap, key, frame, meta}
    this.previewSeq = 0;
    this.previewCount = 0;
    this.previewTimer = null;
    this.refreshing = null;
    this.refreshAgain = false;
    this.loads = 0;
    this.drag = null;
    this.error = null;
    this.build();
    this.readText();
  }

  // ------------------------------------------------------------------ DOM

  build() {
    injectStyle();
    const root = (this.root = document.createElement("div"));
    root.className = "ia-editor ia-unavailable";
    this.status = document.createElement("div");
    this.status.className = "ia-status";
    this.canvas = document.createElement("canvas");
    this.canvas.width = 320;
    this.canvas.height = 180;
    this.controls = document.createElement("div");
    this.controls.className = "ia-controls";
    this.inputs = {};
    for (const spec of [...CONTROLS, { key: "frame", label: "frame", min: 0, max: 0, step: 1 }]) {
      const label = document.createElement("label");
      label.textContent = spec.label;
      const range = document.createElement("input");
      range.type = "range";
      const number = document.createElement("input");
      number.type = "number";
      for (const el of [range, number]) {
        Object.assign(el, { min: spec.min, max: spec.max, step: spec.step });
        el.dataset.key = spec.key;
        el.addEventListener("input", () => this.onControl(spec.key, Number(el.value)));
      }
      this.inputs[spec.key] = { range, number };
      this.controls.append(label, range, number);
    }
    root.append(this.status, this.canvas, this.controls);
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    c.addEventListener("pointermove", (e) => this.onPointerMove(e));
    c.addEventListener("pointerup", (e) => this.onPointerUp(e));
    c.addEventListener("pointercancel", (e) => this.onPointerUp(e));
    c.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    this.textWidget.inputEl?.addEventListener("input", () => this.readText());
    this.setStatus("Queue the workflow once: then the scene appears here. Until then, edit the JSON above.");
  }

  /** Height of the status text as laid out (it wraps), or one line before layout. */
  statusHeight() {
    return Math.max(STATUS_HEIGHT, (this.status.scrollHeight || 0) + 4);
  }

  /** The frontend's margin around the DOM widget (its element is the widget's height less twice it). */
  margins() {
    return 2 * (this.widget?.margin ?? 10);
  }

  /** Height that fits the status line, the frame at the widget's width, and the controls. */
  minHeight() {
    if (!this.info) return this.statusHeight() + 6 + this.margins();
    const width = this.root.clientWidth ? this.root.clientWidth - 8 : Math.max(200, (this.node.size?.[0] ?? 480) - 30);
    const canvasHeight = Math.min(560, (width * this.info.height) / this.info.width);
    const controls = this.controls.offsetHeight || CONTROLS_HEIGHT;
    return this.statusHeight() + canvasHeight + controls + 14 + this.margins();
  }

  idleMessage() {
    const info = this.info;
    if (!info) {
      return "No scene for this node yet: queue the workflow once, then place the object here. " +
        "Until then the JSON above is used as is.";
    }
    return `Scene ${info.width}x${info.height}, ${info.num_frames} frames. ` +
      "Drag the object; wheel or the square handle scales it.";
  }

  setStatus(text, isError = false) {
    const changed = this.status.textContent !== text;
    this.status.textContent = text;
    this.status.title = text;
    this.status.classList.toggle("ia-error", isError);
    this.error = isError ? text : null;
    if (changed) requestAnimationFrame(() => this.fitStatus());
  }

  /** Grow the node when a longer status wraps to more lines than it has room for. */
  fitStatus() {
    const height = this.statusHeight();
    if (height !== this.shownStatusHeight) {
      this.shownStatusHeight = height;
      this.relayout();
    }
  }

  syncControls() {
    if (!this.placement) return;
    for (const spec of CONTROLS) {
      const value = getKey(this.placement, spec.key);
      const { range, number } = this.inputs[spec.key];
      if (document.activeElement !== range) range.value = value;
      if (document.activeElement !== number) number.value = Math.round(value * 100) / 100;
    }
    const { range, number } = this.inputs.frame;
    range.value = number.value = this.frame;
  }

  relayout() {
    const [w, h] = this.node.size;
    const wanted = this.node.computeSize?.()?.[1] ?? h;
    this.node.setSize?.([Math.max(w, this.info ? 460 : w), Math.max(h, wanted)]);
    this.node.setDirtyCanvas?.(true, true);
    app.graph?.setDirtyCanvas(true, true);
  }

  // ------------------------------------------------------------------ state <-> JSON widget

  readText() {
    try {
      this.placement = PM.parsePlacement(String(this.textWidget.value ?? ""));
      if (this.error) this.setStatus(this.idleMessage());
    } catch (err) {
      this.setStatus(err.message, true);
      return;
    }
    this.syncControls();
    this.requestSurface();
    this.draw();
    this.schedulePreview(150);
  }

  writeText() {
    this.textWidget.value = PM.formatPlacement(this.placement);
    this.placement = PM.parsePlacement(this.textWidget.value); // exactly what the graph will read
    this.node.setDirtyCanvas?.(true, false);
  }

  update(changes, previewDelay = 150) {
    try {
      this.placement = PM.withChanges(this.placement, changes);
    } catch (err) {
      this.setStatus(err.message, true);
      return;
    }
    this.writeText();
    this.syncControls();
    this.requestSurface();
    this.draw();
    this.schedulePreview(previewDelay);
  }

  onControl(key, value) {
    if (!Number.isFinite(value)) return;
    if (key === "frame") {
      this.frame = Math.round(value);
      this.syncControls();
      this.draw();
      this.schedulePreview(0);
      return;
    }
    if (!this.placement) return;
    this.update(changeFor(this.placement, key, value));
  }

  // ------------------------------------------------------------------ server

  nodeId() {
    return String(this.node.id);
  }

  /** The id of the workflow the node is in: the server keeps scenes per workflow and node. */
  workflowId() {
    const graph = this.node.graph?.rootGraph ?? this.node.graph ?? app.graph;
    return String(graph?.id ?? "");
  }

  /** URL of one of this node's editor routes, for the node's workflow now or the one given. */
  route(name, workflow = this.workflowId()) {
    const query = new URLSearchParams({ workflow });
    return `${ROUTE}/${encodeURIComponent(this.nodeId())}/${name}?${query}`;
  }

  /** Ask the server for this node's scene; several calls at once run as one, then once more. */
  refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = this.load().finally(() => {
      this.refreshing = null;
      this.loads += 1; // answers received (tests wait for the first instead of sleeping)
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.refresh();
      }
    });
    return this.refreshing;
  }

  async load() {
    if (this.node.id == null || this.node.id === -1) return;
    // One workflow id for the whole load: opening another workflow while the info request is out must
    // not ask for that workflow's frame with this one's answer (a 404), nor show this one's scene there.
    const workflow = this.workflowId();
    const moved = () => {
      if (this.workflowId() === workflow) return false;
      this.refreshAgain = true;
      return true;
    };
    let info = null;
    try {
      const res = await api.fetchApi(this.route("info", workflow));
      if (res.ok) info = await res.json(); // {available: false} until the node ran in this workflow
    } catch (err) {
      console.warn("InsertAnywhere editor: info request failed", err);
    }
    if (moved()) return;
    if (!info?.available) {
      this.setAvailable(null);
      return;
    }
    if (info.token !== this.token || !this.frame0) {
      const res = await api.fetchApi(this.route("frame0", workflow));
      if (moved()) return;
      if (!res.ok) return this.setAvailable(null);
      this.frame0?.close();
      this.frame0 = await createImageBitmap(await res.blob());
      this.surfaces.clear();
      this.lastSurface = null;
      this.preview?.bitmap.close();
      this.preview = null;
    }
    this.token = info.token;
    this.setAvailable(info);
    this.readText();
  }

  setAvailable(info) {
    const was = !!this.info;
    this.info = info;
    this.root.classList.toggle("ia-unavailable", !info);
    this.root.dataset.available = info ? "1" : "0";
    if (!info) {
      this.setStatus(this.idleMessage());
    } else {
      this.canvas.width = info.width;
      this.canvas.height = info.height;
      const hp = this.inputs.height_px;
      hp.range.max = hp.number.max = Math.max(8, 2 * info.height);
      const fr = this.inputs.frame;
      fr.range.max = fr.number.max = info.num_frames - 1;
      this.frame = Math.min(this.frame, info.num_frames - 1);
      if (!this.error) this.setStatus(this.idleMessage());
    }
    if (was !== !!info) this.relayout();
  }

  async requestSurface() {
    if (!this.info || !this.placement) return;
    const key = PM.surfaceKey(this.placement);
    if (this.surfaces.has(key) || this.surfaceInFlight) return;
    this.surfaceInFlight = true;
    const { anchor, height_px } = this.placement;
    try {
      const res = await api.fetchApi(this.route("surface"), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ anchor, height_px }),
      });
      const body = await res.json();
      if (res.ok) {
        this.surfaces.set(key, body);
        this.lastSurface = body;
        while (this.surfaces.size > SURFACES_KEPT) this.surfaces.delete(this.surfaces.keys().next().value);
        if (this.error && !this.drag) this.setStatus("Surface found.");
      } else {
        this.setStatus(body.error ?? `Surface request failed (${res.status})`, true);
        if (res.status === 404) this.refresh();
      }
    } catch (err) {
      this.setStatus(`Surface request failed: ${err.message}`, true);
    } finally {
      this.surfaceInFlight = false;
    }
    this.draw();
    if (this.placement && PM.surfaceKey(this.placement) !== key) this.requestSurface();
  }

  schedulePreview(delay) {
    clearTimeout(this.previewTimer);
    if (!this.info || !this.placement) return;
    this.previewTimer = setTimeout(() => this.fetchPreview(), delay);
  }

  async fetchPreview() {
    const seq = ++this.previewSeq;
    const placement = this.placement;
    const frame = this.frame;
    const key = PM.formatPlacement(placement);
    const started = performance.now();
    if (frame > 0) this.setStatus(`Frame ${frame}: propagating and rendering…`);
    try {
      const res = await api.fetchApi(this.route("preview"), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ placement, frame, max_side: PREVIEW_MAX_SIDE }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        if (seq === this.previewSeq) this.setStatus(body.error ?? `Preview failed (${res.status})`, true);
        if (res.status === 404) this.refresh();
        return;
      }
      const meta = JSON.parse(res.headers.get("X-Preview") || "{}");
      const bitmap = await createImageBitmap(await res.blob());
      if (seq !== this.previewSeq) { // a newer request is on its way
        bitmap.close();
        return;
      }
      this.preview?.bitmap.close();
      this.preview = { bitmap, key, frame, meta };
      this.previewCount += 1;
      this.root.dataset.previewCount = String(this.previewCount);
      const ms = Math.round(performance.now() - started);
      const hidden = meta.amodal_px - meta.visible_px;
      this.setStatus(`Frame ${frame}: ${ms} ms, object ${meta.visible_px} px visible` +
        (hidden > 0 ? `, ${hidden} px hidden (tinted)` : "") +
        (meta.warnings?.length ? ` — ${meta.warnings.join("; ")}` : ""));
      this.draw();
    } catch (err) {
      if (seq === this.previewSeq) this.setStatus(`Preview failed: ${err.message}`, true);
    }
  }

  // ------------------------------------------------------------------ drawing

  /** The surface for the current anchor, or the last one moved under it (while the exact one loads). */
  surface() {
    const exact = this.surfaces.get(PM.surfaceKey(this.placement));
    if (exact) return { ...exact, provisional: false };
    const last = this.lastSurface;
    if (!last) return null;
    const K = this.info.K;
    const [u, v] = this.placement.anchor;
    const ray = [(u - K[0][2]) / K[0][0], (v - K[1][2]) / K[1][1], 1];
    const denom = PM.dot(last.normal, ray);
    let t = Math.abs(denom) > 0.05 ? PM.dot(last.normal, last.point) / denom : last.point[2];
    if (!(t > 0) || Math.abs(t - last.point[2]) > 0.5 * last.point[2]) t = last.point[2];
    return { ...last, point: ray.map((r) => r * t), provisional: true };
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    if (!this.info || !ctx) return;
    const { width: W, height: H } = this.info;
    const key = this.placement ? PM.formatPlacement(this.placement) : null;
    const preview = this.preview;
    const previewMatches = preview && preview.frame === this.frame && preview.key === key;
    ctx.clearRect(0, 0, W, H);
    if (this.frame === 0) {
      ctx.drawImage(previewMatches ? preview.bitmap : this.frame0, 0, 0, W, H);
    } else if (preview && preview.frame === this.frame) {
      ctx.drawImage(preview.bitmap, 0, 0, W, H);
    } else {
      ctx.globalAlpha = 0.4;
      ctx.drawImage(this.frame0, 0, 0, W, H);
      ctx.globalAlpha = 1;
    }
    this.root.dataset.frame = String(this.frame);
    if (!this.placement) return;
    if (this.frame > 0) {
      const at = preview?.frame === this.frame ? preview.meta.anchor_px : null;
      if (at) this.drawAnchor(ctx, [at[0] / preview.meta.scale, at[1] / preview.meta.scale], "#ffd54f");
      return;
    }
    const surface = this.surface();
    if (!surface) {
      this.drawAnchor(ctx, this.placement.anchor, "#ffd54f");
      return;
    }
    const K = this.info.K;
    const pose = PM.placementPose(this.placement, surface, K);
    const px = this.pixelScale();
    if (surface.samples && this.drag?.mode === "move") {
      for (const [u, v, on] of surface.samples) {
        ctx.fillStyle = on ? "rgba(120,255,140,0.7)" : "rgba(255,160,60,0.7)";
        ctx.fillRect(u - px, v - px, 2 * px, 2 * px);
      }
    }
    if (!previewMatches) this.drawPoints(ctx, pose, K, px);
    this.drawBox(ctx, pose, K, px, surface.provisional);
    this.drawAxes(ctx, pose, K, px);
    this.drawAnchor(ctx, this.placement.anchor, "#ffd54f");
    const top = this.topHandle(pose);
    ctx.fillStyle = "#4fc3f7";
    ctx.strokeStyle = "#000";
    const s = HANDLE_PX * px;
    ctx.fillRect(top[0] - s, top[1] - s, 2 * s, 2 * s);
    ctx.strokeRect(top[0] - s, top[1] - s, 2 * s, 2 * s);
  }

  drawPoints(ctx, pose, K, px) {
    const pts = PM.projectObject(pose, K, this.info.object.points);
    const order = pts.map((p, i) => i).sort((a, b) => pts[b][2] - pts[a][2]);
    const r = 1.2 * px;
    for (const i of order) {
      const [u, v] = pts[i];
      if (!Number.isFinite(u)) continue;
      const [cr, cg, cb] = this.info.object.colors[i];
      ctx.fillStyle = `rgb(${cr},${cg},${cb})`;
      ctx.fillRect(u - r, v - r, 2 * r, 2 * r);
    }
  }

  drawBox(ctx, pose, K, px, dashed) {
    ctx.strokeStyle = "rgba(255,255,255,0.85)";
    ctx.lineWidth = px;
    ctx.setLineDash(dashed ? [4 * px, 3 * px] : []);
    ctx.beginPath();
    for (const [a, b] of PM.boxEdges(this.info.object.bbox)) {
      const pa = PM.projectCanonical(pose, K, a), pb = PM.projectCanonical(pose, K, b);
      if (![...pa, ...pb].every(Number.isFinite)) continue;
      ctx.moveTo(pa[0], pa[1]);
      ctx.lineTo(pb[0], pb[1]);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  drawAxes(ctx, pose, K, px) {
    const o = PM.projectCanonical(pose, K, [0, 0, 0]);
    for (const [axis, color] of [[[0.5, 0, 0], "#ef5350"], [[0, 0.5, 0], "#66bb6a"], [[0, 0, 0.5], "#42a5f5"]]) {
      const e = PM.projectCanonical(pose, K, axis);
      if (![...o, ...e].every(Number.isFinite)) continue;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2 * px;
      ctx.beginPath();
      ctx.moveTo(o[0], o[1]);
      ctx.lineTo(e[0], e[1]);
      ctx.stroke();
    }
  }

  drawAnchor(ctx, [u, v], color) {
    const px = this.pixelScale();
    ctx.strokeStyle = "#000";
    ctx.fillStyle = color;
    ctx.lineWidth = px;
    ctx.beginPath();
    ctx.arc(u, v, HANDLE_PX * px, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }

  topHandle(pose) {
    const [lo, hi] = this.info.object.bbox;
    return PM.projectCanonical(pose, this.info.K, [(lo[0] + hi[0]) / 2, hi[1], (lo[2] + hi[2]) / 2]);
  }

  /** The canvas's drawn image rectangle on screen (object-fit: contain). */
  imageRect() {
    const r = this.canvas.getBoundingClientRect();
    const s = Math.min(r.width / this.canvas.width, r.height / this.canvas.height);
    const w = this.canvas.width * s, h = this.canvas.height * s;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, scale: s };
  }

  /** Frame pixels per screen pixel. */
  pixelScale() {
    const s = this.imageRect().scale;
    return s > 0 ? 1 / s : 1;
  }

  toFrame(e) {
    const r = this.imageRect();
    return [(e.clientX - r.left) / r.scale - 0.5, (e.clientY - r.top) / r.scale - 0.5];
  }

  // ------------------------------------------------------------------ pointer

  onPointerDown(e) {
    if (!this.info || !this.placement || e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    this.canvas.setPointerCapture(e.pointerId);
    if (this.frame !== 0) {
      this.frame = 0;
      this.syncControls();
    }
    const p = this.toFrame(e);
    const surface = this.surface();
    const px = this.pixelScale();
    if (surface) {
      const pose = PM.placementPose(this.placement, surface, this.info.K);
      const top = this.topHandle(pose);
      if (Math.hypot(p[0] - top[0], p[1] - top[1]) <= 2 * HANDLE_PX * px) {
        this.drag = { mode: "scale", start: top, height: this.placement.height_px };
        return;
      }
    }
    const anchor = this.placement.anchor;
    const grab = Math.hypot(p[0] - anchor[0], p[1] - anchor[1]) <= Math.max(2 * HANDLE_PX * px,
      0.6 * this.placement.height_px);
    this.drag = { mode: "move", offset: grab ? [anchor[0] - p[0], anchor[1] - p[1]] : [0, 0] };
    this.moveAnchor(p);
  }

  onPointerMove(e) {
    if (!this.drag) return;
    e.preventDefault();
    e.stopPropagation();
    const p = this.toFrame(e);
    if (this.drag.mode === "scale") {
      const h = PM.heightFromHandle(this.drag.height, this.placement.anchor, this.drag.start, p);
      this.update({ height_px: Math.round(h * 100) / 100 }, 250);
    } else {
      this.moveAnchor(p);
    }
  }

  onPointerUp(e) {
    if (!this.drag) return;
    e.stopPropagation();
    this.drag = null;
    this.canvas.releasePointerCapture?.(e.pointerId);
    this.draw();
    this.schedulePreview(0);
  }

  moveAnchor(p) {
    const { width: W, height: H } = this.info;
    const u = Math.min(Math.max(p[0] + this.drag.offset[0], 0), W - 1);
    const v = Math.min(Math.max(p[1] + this.drag.offset[1], 0), H - 1);
    this.update({ anchor: [Math.round(u * 100) / 100, Math.round(v * 100) / 100] }, 250);
  }

  onWheel(e) {
    if (!this.info || !this.placement) return;
    e.preventDefault();
    e.stopPropagation();
    const steps = -Math.sign(e.deltaY);
    if (!steps) return;
    const h = PM.heightFromWheel(this.placement.height_px, steps);
    this.update({ height_px: Math.round(h * 100) / 100 }, 200);
  }

  /** A snapshot for tests and debugging. */
  state() {
    return {
      available: !!this.info,
      nodeId: this.nodeId(),
      workflowId: this.workflowId(),
      placement: this.placement,
      text: this.textWidget.value,
      frame: this.frame,
      previewCount: this.previewCount,
      previewMeta: this.preview?.meta ?? null,
      previewFrame: this.preview?.frame ?? null,
      previewCurrent: !!this.preview && !!this.placement && this.preview.frame === this.frame &&
        this.preview.key === PM.formatPlacement(this.placement),
      surfaces: this.surfaces.size,
      error: this.error,
      status: this.status.textContent,
      loads: this.loads,
    };
  }

  /** Screen position (client px) of a frame pixel, for tests that drive the pointer. */
  clientPoint(u, v) {
    const r = this.imageRect();
    return [r.left + (u + 0.5) * r.scale, r.top + (v + 0.5) * r.scale];
  }

  /** Client position of the scale handle, or null. */
  scaleHandleClientPoint() {
    const surface = this.surface();
    if (!surface || !this.placement) return null;
    const top = this.topHandle(PM.placementPose(this.placement, surface, this.info.K));
    return this.clientPoint(top[0], top[1]);
  }
}

function attach(node) {
  if (node.widgets?.some((w) => w.name === WIDGET_NAME)) return;
  const textWidget = node.widgets?.find((w) => w.name === "placement");
  if (!textWidget || typeof node.addDOMWidget !== "function") return;
  const editor = new PlacementEditor(node, textWidget);
  const widget = node.addDOMWidget(WIDGET_NAME, "ia-placement-editor", editor.root, {
    serialize: false, // the state lives in the `placement` widget
    hideOnZoom: false,
    getValue: () => undefined,
    setValue: () => {},
    getMinHeight: () => editor.minHeight(),
    getMaxHeight: () => editor.minHeight(), // spare height goes to the JSON box, not to black bars
  });
  widget.serialize = false;
  widget.editor = editor;
  editor.widget = widget;
  // the JSON box keeps readable lines whatever size a saved workflow gives the node
  textWidget.options.getMinHeight = () => JSON_MIN_HEIGHT;
  editors.add(editor);
  const onConfigure = node.onConfigure;
  node.onConfigure = function (...args) {
    const r = onConfigure?.apply(this, args);
    editor.readText();
    editor.relayout();
    editor.refresh();
    return r;
  };
  const onAdded = node.onAdded;
  node.onAdded = function (...args) {
    const r = onAdded?.apply(this, args);
    setTimeout(() => editor.refresh(), 0);
    return r;
  };
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    editors.delete(editor);
    return onRemoved?.apply(this, args);
  };
}

app.registerExtension({
  name: "InsertAnywhere.PlacementEditor",
  async setup() {
    // The node remembers its scene when it runs: refresh the editors then.
    api.addEventListener("executed", ({ detail }) => {
      for (const editor of editors) if (String(detail?.node) === editor.nodeId()) editor.refresh();
    });
    api.addEventListener("execution_success", () => {
      for (const editor of editors) editor.refresh();
    });
  },
  async nodeCreated(node) {
    if (node.comfyClass === NODE_TYPE) attach(node);
  },
});
