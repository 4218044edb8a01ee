// node --test tests/js
// js/input_logic.js: which dropped file an upload input takes, the upload answer, Load Video's info text.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  acceptAttribute, acceptsFile, fileSuffix, plainFileName, routeDrop, uploadedName, videoInfoQuery, videoInfoText,
} from "../../js/input_logic.js";

const MESH = [".glb", ".gltf", ".obj", ".ply", ".stl"];
const file = (name) => ({ name });

test("suffixes are matched case-insensitively on the last dot of the base name", () => {
  assert.equal(fileSuffix("chair.PLY"), ".ply");
  assert.equal(fileSuffix("dir.v2/chair"), "");
  assert.equal(fileSuffix(".hidden"), "");
  assert.equal(fileSuffix("scene.depth.npz"), ".npz");
  assert.ok(acceptsFile("Chair.PLY", MESH));
  assert.ok(!acceptsFile("chair.ply.json", MESH));
  assert.ok(!acceptsFile("workflow.json", MESH));
  assert.ok(!acceptsFile("ply", MESH));
});

test("a drop goes to the input that takes the first acceptable file, else to the frontend", () => {
  const inputs = [{ name: "mesh_file", suffixes: MESH }, { name: "depth_file", suffixes: [".npz"] }];
  assert.deepEqual(routeDrop([file("notes.txt"), file("d.NPZ")], inputs), { input: inputs[1], file: file("d.NPZ") });
  assert.equal(routeDrop([file("chair.stl")], inputs).input.name, "mesh_file");
  assert.equal(routeDrop([file("workflow.json"), file("photo.png")], inputs), null);
  assert.equal(routeDrop(undefined, inputs), null);
});

test("the uploaded file's combo value includes its subfolder", () => {
  assert.equal(uploadedName({ name: "chair (1).ply", subfolder: "", type: "input" }), "chair (1).ply");
  assert.equal(uploadedName({ name: "chair.ply", subfolder: "3d", type: "input" }), "3d/chair.ply");
  assert.throws(() => uploadedName({ error: "no file" }), /names no file/);
  assert.equal(acceptAttribute([".GLB", ".ply"]), ".glb,.ply");
});

test("the video info query carries the file without its annotation and every knob", () => {
  assert.equal(plainFileName("clip.mp4 [input]"), "clip.mp4");
  const query = new URLSearchParams(videoInfoQuery("sub/clip one.mp4 [input]", {
    start_frame: 3, frame_cap: 81, stride: 2, max_side: 832, fit: "crop", frame_count: "4k+1", other: 9,
  }));
  assert.deepEqual(Object.fromEntries(query), {
    file: "sub/clip one.mp4", start_frame: "3", frame_cap: "81", stride: "2", max_side: "832", fit: "crop",
    frame_count: "4k+1",
  });
  assert.equal(videoInfoQuery("", {}), null);
  assert.equal(videoInfoQuery(undefined, {}), null);
});

test("the info text names the source and what the knobs load", () => {
  const info = { width: 1280, height: 720, fps: 29.97, num_frames: 300,
    output: { frames: 81, frames_known: true, width: 832, height: 464, fps: 12.5 } };
  assert.equal(videoInfoText(info),
    "Source: 1280x720, 29.97 fps, 300 frames (10.0 s)\nLoads: 81 frames at 832x464, 12.5 fps");
  const unknown = { width: 640, height: 480, fps: 25, num_frames: 0,
    output: { frames: 81, frames_known: false, width: 640, height: 480, fps: 25 } };
  assert.equal(videoInfoText(unknown), "Source: 640x480, 25 fps, frame count unknown\nLoads: up to 81 frames at 640x480, 25 fps");
  const past = { ...info, output: { ...info.output, frames: 0 } };
  assert.match(videoInfoText(past), /Loads nothing: start_frame is past the end/);
});
