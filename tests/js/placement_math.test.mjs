// node --test tests/js
// js/placement_math.js against values computed by insertanywhere/masks/placement.py
// (fixture written by tests/core/masks/test_editor_preview.py --write).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  boxEdges, formatPlacement, heightFromHandle, heightFromWheel, parsePlacement, placementPose, planeRadius,
  projectCanonical, projectObject, surfaceFrame, surfaceKey, withChanges,
} from "../../js/placement_math.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/placement_cases.json", import.meta.url)));

function close(actual, expected, tol, what) {
  const a = actual.flat(2), e = expected.flat(2);
  assert.equal(a.length, e.length, `${what}: length`);
  a.forEach((v, i) => assert.ok(Math.abs(v - e[i]) <= tol, `${what}[${i}]: ${v} vs ${e[i]}`));
}

test("pose equals placement_pose for every fixture case", () => {
  assert.ok(fixture.cases.length >= 7);
  for (const c of fixture.cases) {
    const pose = placementPose(c.placement, c.surface, fixture.K);
    const what = `${c.scene} ${JSON.stringify(c.placement)}`;
    close(pose.cameraFromObject, c.expected.camera_from_object, 1e-9, `${what} camera_from_object`);
    assert.ok(Math.abs(pose.height - c.expected.height) < 1e-12, `${what} height`);
    close(pose.basis.right, c.expected.right, 1e-12, `${what} right`);
    close(pose.basis.up, c.expected.up, 1e-12, `${what} up`);
    close(pose.basis.forward, c.expected.forward, 1e-12, `${what} forward`);
    const projected = projectObject(pose, fixture.K, fixture.canonical_points);
    close(projected, c.expected.projected, 1e-7, `${what} projected`);
  }
});

test("parse accepts and rejects exactly what parse_placement does", () => {
  for (const c of fixture.parse) {
    if (c.ok) {
      assert.deepEqual(parsePlacement(c.text), c.value, c.text);
    } else {
      assert.throws(() => parsePlacement(c.text), (err) => {
        // Same message up to the first detail (Python repr vs JSON quoting may differ after).
        assert.equal(err.message.slice(0, 12).toLowerCase(), c.error.slice(0, 12).toLowerCase(), `${c.text}: ${err.message} / ${c.error}`);
        return true;
      });
    }
  }
});

test("all angles 0: object upright on the surface, front towards the camera", () => {
  const c = fixture.cases[0];
  const pose = placementPose({ ...c.placement, yaw_deg: 0 }, c.surface, fixture.K);
  // canonical +Y maps to the surface normal, +Z towards the camera (negative camera z direction).
  close(pose.R.map((row) => row[1]), c.surface.normal.map((v) => v / Math.hypot(...c.surface.normal)), 1e-12, "up");
  assert.ok(pose.R[2][2] < 0);
  // the base centre projects onto the anchor
  close([projectCanonical(pose, fixture.K, [0, 0, 0])], [c.placement.anchor], 1e-6, "anchor");
});

test("surface frame falls back to image down when looking along the normal", () => {
  const f = surfaceFrame([0, 0, 2], [0, 0, -1]);
  close([f.forward, f.right, f.up], [[0, 1, 0], [1, 0, 0], [0, 0, -1]], 1e-12, "frame");
});

test("editing helpers", () => {
  assert.equal(planeRadius(30), 15);
  assert.equal(planeRadius(5), 8);
  assert.equal(planeRadius(500), 48);
  assert.equal(planeRadius(33), 16); // int() truncation, as Python
  // Dragging the handle twice as far from the anchor doubles the height.
  assert.equal(heightFromHandle(40, [100, 100], [100, 60], [100, 20]), 80);
  assert.equal(heightFromHandle(40, [100, 100], [100, 60], [100, 99.999]), 4); // clamped
  assert.ok(Math.abs(heightFromWheel(100, 2) - 121) < 1e-9);
  const p = withChanges({ anchor: [1, 2], height_px: 10 }, { yaw_deg: 45 });
  assert.equal(p.yaw_deg, 45);
  assert.throws(() => withChanges(p, { height_px: -1 }), /height_px/);
  assert.equal(surfaceKey(p), "1,2,8");
  assert.equal(boxEdges([[0, 0, 0], [1, 1, 1]]).length, 12);
});

test("formatPlacement writes docs/FORMATS.md's key order, round-trips through parse", () => {
  const text = formatPlacement({ anchor: [10.123456, 20], height_px: 55.555, yaw_deg: -0.0001, top_k: 32 });
  assert.equal(text, '{\n "anchor": [10.12, 20],\n "height_px": 55.56,\n "yaw_deg": 0,\n "pitch_deg": 0,\n' +
    ' "roll_deg": 0,\n "offset": [0, 0, 0],\n "top_k": 32\n}');
  assert.deepEqual(parsePlacement(text).anchor, [10.12, 20]);
});
