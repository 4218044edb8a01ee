// Placement math of the editor, without the DOM: the same numbers as
// insertanywhere/masks/placement.py (parse_placement, surface_frame, placement_pose)
// for the same placement JSON and the same surface under the anchor.
//
// The surface (point p and normal at the anchor, camera-0 coordinates) comes from the
// server (/insertanywhere/editor/<node>/surface), which runs the Python plane fit; the
// rest (basis, height, rotation, offset, projection) is computed here so the overlay
// follows the pointer without a round trip. Vectors are arrays [x, y, z]; matrices are
// arrays of rows. Tested by tests/js/placement_math.test.mjs against Python values.

export const REQUIRED_KEYS = ["anchor", "height_px"];
export const OPTIONAL_KEYS = ["yaw_deg", "pitch_deg", "roll_deg", "offset", "top_k"];
export const MAX_TOP_K = 4096;
export const WINDOW_FRACTION = 0.5;
export const MIN_RADIUS = 8;
export const MAX_RADIUS = 48;
export const DEFAULT_PLACEMENT = Object.freeze({
  anchor: [0, 0], height_px: 100, yaw_deg: 0, pitch_deg: 0, roll_deg: 0, offset: [0, 0, 0], top_k: 64,
});

export class PlacementError extends Error {}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

function number(value, name) {
  if (!isNumber(value)) {
    throw new PlacementError(`Placement '${name}' is ${JSON.stringify(value)}; it must be a finite number.`);
  }
  return value;
}

function vector(value, length, name) {
  if (!Array.isArray(value) || value.length !== length) {
    throw new PlacementError(`Placement '${name}' is ${JSON.stringify(value)}; it must be a list of ${length} numbers.`);
  }
  return value.map((v, i) => number(v, `${name}[${i}]`));
}

/** Strictly validate placement JSON (text or object), as parse_placement does. */
export function parsePlacement(source) {
  if (typeof source === "string") {
    try {
      source = JSON.parse(source);
    } catch (err) {
      throw new PlacementError(`The placement is not valid JSON (${err.message}); ` +
        'write it like {"anchor": [320, 400], "height_px": 120}.');
    }
  }
  if (source === null || typeof source !== "object" || Array.isArray(source)) {
    throw new PlacementError("The placement must be a JSON object; " +
      'write it like {"anchor": [320, 400], "height_px": 120}.');
  }
  const allowed = [...REQUIRED_KEYS, ...OPTIONAL_KEYS];
  const unknown = Object.keys(source).filter((k) => !allowed.includes(k)).sort();
  if (unknown.length) {
    throw new PlacementError(`Unknown placement key(s) ${JSON.stringify(unknown)}; allowed are ${JSON.stringify(allowed)}.`);
  }
  const missing = REQUIRED_KEYS.filter((k) => !(k in source));
  if (missing.length) {
    throw new PlacementError(`The placement lacks ${JSON.stringify(missing)}; give the anchor pixel [u, v] and height_px.`);
  }
  const height = number(source.height_px, "height_px");
  if (height <= 0) {
    throw new PlacementError(`height_px is ${height}; it must be > 0 (the object's height in pixels).`);
  }
  const topK = "top_k" in source ? source.top_k : 64;
  if (!Number.isInteger(topK) || topK < 3 || topK > MAX_TOP_K) {
    throw new PlacementError(`top_k is ${JSON.stringify(topK)}; it must be an integer from 3 to ${MAX_TOP_K}.`);
  }
  return {
    anchor: vector(source.anchor, 2, "anchor"),
    height_px: height,
    yaw_deg: number("yaw_deg" in source ? source.yaw_deg : 0, "yaw_deg"),
    pitch_deg: number("pitch_deg" in source ? source.pitch_deg : 0, "pitch_deg"),
    roll_deg: number("roll_deg" in source ? source.roll_deg : 0, "roll_deg"),
    offset: vector("offset" in source ? source.offset : [0, 0, 0], 3, "offset"),
    top_k: topK,
  };
}

const round = (v, digits) => {
  const f = 10 ** digits;
  const r = Math.round(v * f) / f;
  return Object.is(r, -0) ? 0 : r;
};

/**
 * The placement as JSON text for the node's widget: one key a line in docs/FORMATS.md's order,
 * numbers rounded for people to read (0.01 px / degree, 1e-4 object heights).
 */
export function formatPlacement(placement) {
  const p = parsePlacement(placement);
  const fields = {
    anchor: p.anchor.map((v) => round(v, 2)),
    height_px: round(p.height_px, 2),
    yaw_deg: round(p.yaw_deg, 2),
    pitch_deg: round(p.pitch_deg, 2),
    roll_deg: round(p.roll_deg, 2),
    offset: p.offset.map((v) => round(v, 4)),
    top_k: p.top_k,
  };
  const lines = Object.entries(fields).map(([k, v]) => ` "${k}": ${JSON.stringify(v).replaceAll(",", ", ")}`);
  return `{\n${lines.join(",\n")}\n}`;
}

/** Radius (px) of the depth window the surface plane is fitted in (placement.py). */
export function planeRadius(heightPx) {
  return Math.trunc(Math.min(Math.max(WINDOW_FRACTION * heightPx, MIN_RADIUS), MAX_RADIUS));
}

// ----------------------------------------------------------------------------- vectors

export const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const norm = (a) => Math.sqrt(dot(a, a));
const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];

export function matmul(A, B) {
  return A.map((row) => B[0].map((_, j) => row.reduce((s, v, k) => s + v * B[k][j], 0)));
}

const rad = (deg) => (deg * Math.PI) / 180;

export function rotX(deg) {
  const c = Math.cos(rad(deg)), s = Math.sin(rad(deg));
  return [[1, 0, 0], [0, c, -s], [0, s, c]];
}

export function rotY(deg) {
  const c = Math.cos(rad(deg)), s = Math.sin(rad(deg));
  return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
}

export function rotZ(deg) {
  const c = Math.cos(rad(deg)), s = Math.sin(rad(deg));
  return [[c, -s, 0], [s, c, 0], [0, 0, 1]];
}

// ----------------------------------------------------------------------------- placement

/**
 * (right, up, forward) for a surface point and its normal (camera-0 coordinates), as
 * placement.surface_frame: forward = p -> camera within the surface; looking straight
 * along the normal, forward falls back to the image's down direction.
 */
export function surfaceFrame(point, normal) {
  const up = scale(normal, 1 / norm(normal));
  const toCam = scale(point, -1);
  let forward = sub(toCam, scale(up, dot(toCam, up)));
  if (norm(forward) < 1e-3 * norm(toCam)) {
    const down = [0, 1, 0];
    forward = sub(down, scale(up, dot(down, up)));
    if (norm(forward) < 1e-6) forward = sub([0, 0, -1], scale(up, up[2]));
  }
  forward = scale(forward, 1 / norm(forward));
  return { right: cross(up, forward), up, forward };
}

/**
 * Pose of the unit-height canonical object in frame 0's camera, as placement_pose.
 * placement: parsed or raw; surface: {point: [3], normal: [3]} under the anchor; K: 3x3.
 * Returns {cameraFromObject: 4x4, R: 3x3 rotation, height: H (scene units), basis: {right, up, forward}, origin: [3]}.
 */
export function placementPose(placement, surface, K) {
  const p = parsePlacement(placement);
  const { point, normal } = surface;
  const basis = surfaceFrame(point, normal);
  const H = (p.height_px * point[2]) / K[1][1];
  const B = [0, 1, 2].map((i) => [basis.right[i], basis.up[i], basis.forward[i]]);
  const R = matmul(matmul(matmul(B, rotY(p.yaw_deg)), rotX(p.pitch_deg)), rotZ(p.roll_deg));
  const [dx, dy, dz] = p.offset;
  const shift = add(add(scale(basis.right, dx), scale(basis.up, dy)), scale(basis.forward, dz));
  const origin = add(point, scale(shift, H));
  const cameraFromObject = [
    [H * R[0][0], H * R[0][1], H * R[0][2], origin[0]],
    [H * R[1][0], H * R[1][1], H * R[1][2], origin[1]],
    [H * R[2][0], H * R[2][1], H * R[2][2], origin[2]],
    [0, 0, 0, 1],
  ];
  return { cameraFromObject, R, height: H, basis, origin };
}

/** Apply a 4x4 affine matrix to a point [3]. */
export function transformPoint(M, x) {
  return [0, 1, 2].map((i) => M[i][0] * x[0] + M[i][1] * x[1] + M[i][2] * x[2] + M[i][3]);
}

/** Camera point [3] -> [u, v, z]; u, v are NaN when z <= 0 (as geometry.project). */
export function projectPoint(K, x) {
  if (!(x[2] > 1e-9)) return [NaN, NaN, x[2]];
  return [(K[0][0] * x[0]) / x[2] + K[0][2], (K[1][1] * x[1]) / x[2] + K[1][2], x[2]];
}

/** Canonical object points [[x, y, z], ...] -> image [[u, v, z], ...] in frame 0. */
export function projectObject(pose, K, points) {
  return points.map((x) => projectPoint(K, transformPoint(pose.cameraFromObject, x)));
}

/** Image position [u, v] of a canonical point (e.g. the object's top [0, 1, 0]). */
export function projectCanonical(pose, K, x) {
  const [u, v] = projectPoint(K, transformPoint(pose.cameraFromObject, x));
  return [u, v];
}

// ----------------------------------------------------------------------------- editing

/**
 * New height_px after dragging the scale handle: the object's projected size grows with
 * the pointer's distance from the anchor, relative to where the drag started.
 */
export function heightFromHandle(startHeight, anchorPx, startPx, pointerPx, minHeight = 4, maxHeight = 8192) {
  const d0 = Math.hypot(startPx[0] - anchorPx[0], startPx[1] - anchorPx[1]);
  const d1 = Math.hypot(pointerPx[0] - anchorPx[0], pointerPx[1] - anchorPx[1]);
  if (!(d0 > 1e-6)) return startHeight;
  return Math.min(Math.max(startHeight * (d1 / d0), minHeight), maxHeight);
}

/** New height_px after `steps` wheel notches (positive = larger), 10% per notch. */
export function heightFromWheel(height, steps, minHeight = 4, maxHeight = 8192) {
  return Math.min(Math.max(height * 1.1 ** steps, minHeight), maxHeight);
}

/** Copy of the placement with `changes` applied, validated. */
export function withChanges(placement, changes) {
  return parsePlacement({ ...parsePlacement(placement), ...changes });
}

/** Key of the surface fit: it depends only on the anchor and the window radius. */
export function surfaceKey(placement) {
  const p = parsePlacement(placement);
  return `${p.anchor[0]},${p.anchor[1]},${planeRadius(p.height_px)}`;
}

/** The 12 edges of a box [min, max] as pairs of corner points (for the overlay's wireframe). */
export function boxEdges(bbox) {
  const [lo, hi] = bbox;
  const corner = (i) => [i & 1 ? hi[0] : lo[0], i & 2 ? hi[1] : lo[1], i & 4 ? hi[2] : lo[2]];
  const edges = [];
  for (let i = 0; i < 8; i++) {
    for (const bit of [1, 2, 4]) {
      if (!(i & bit)) edges.push([corner(i), corner(i | bit)]);
    }
  }
  return edges;
}
