// Pure helpers of the pack's file inputs (js/file_upload.js, js/video_info.js); no DOM, no ComfyUI,
// so `node --test tests/js` checks them.

/** The lower-case suffix of a file name with its dot (".ply"), or "" when it has none. */
export function fileSuffix(name) {
  const base = String(name ?? "").split(/[\\/]/).pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot).toLowerCase() : "";
}

/** Whether a file called `name` is one of `suffixes` (".glb", ...; any case). */
export function acceptsFile(name, suffixes) {
  const suffix = fileSuffix(name);
  return suffix !== "" && suffixes.some((s) => s.toLowerCase() === suffix);
}

/**
 * Which of a node's upload inputs takes a dropped file: {input, file} for the first file that one of
 * `inputs` ([{name, suffixes}]) accepts, or null (the drop is then left to the frontend).
 */
export function routeDrop(files, inputs) {
  for (const file of Array.from(files ?? [])) {
    const input = inputs.find((i) => acceptsFile(file.name, i.suffixes));
    if (input) return { input, file };
  }
  return null;
}

/** The combo value of an uploaded file from POST /upload/image's answer {name, subfolder, type}. */
export function uploadedName(answer) {
  if (!answer || typeof answer.name !== "string" || !answer.name) {
    throw new Error("the server's upload answer names no file");
  }
  return answer.subfolder ? `${answer.subfolder}/${answer.name}` : answer.name;
}

/** The accept attribute of a file picker for these suffixes. */
export function acceptAttribute(suffixes) {
  return suffixes.map((s) => s.toLowerCase()).join(",");
}

/** The file name a combo shows, without the frontend's " [input]" annotation. */
export function plainFileName(value) {
  return String(value ?? "").replace(/ \[(input|output|temp)\]$/, "").trim();
}

const VIDEO_KNOBS = ["start_frame", "frame_cap", "stride", "max_side", "fit", "frame_count"];

/** The query of GET /insertanywhere/video_info for a file and the node's knobs, or null without a file. */
export function videoInfoQuery(file, knobs) {
  const name = plainFileName(file);
  if (!name) return null;
  const query = new URLSearchParams({ file: name });
  for (const key of VIDEO_KNOBS) {
    const value = knobs?.[key];
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  return query.toString();
}

function fps(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/0$/, "");
}

/** Two lines for the node: the source, then what the knobs load from it. */
export function videoInfoText(info) {
  const count = info.num_frames > 0 ? `${info.num_frames} frames (${(info.num_frames / info.fps).toFixed(1)} s)`
    : "frame count unknown";
  const source = `Source: ${info.width}x${info.height}, ${fps(info.fps)} fps, ${count}`;
  const out = info.output;
  const frames = out.frames_known ? `${out.frames} frames` : `up to ${out.frames} frames`;
  const loads = out.frames === 0 && out.frames_known
    ? "Loads nothing: start_frame is past the end of the video."
    : `Loads: ${frames} at ${out.width}x${out.height}, ${fps(out.fps)} fps`;
  return `${source}\n${loads}`;
}
