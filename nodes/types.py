"""Custom ComfyUI types for the data flowing between InsertAnywhere stages."""

from ._comfy import io

Scene = io.Custom("IA_SCENE")          # masks.scene.SceneRecord: depth, K, poses, moving masks, flow
Object3D = io.Custom("IA_OBJECT3D")    # masks.object3d.Object3D: canonical coloured points (+ mesh)
Placement = io.Custom("IA_PLACEMENT")  # masks.placement.PlacedObject: the placement resolved on frame 0
Track = io.Custom("IA_TRACK")          # masks.scene.ObjectTrack: per-frame world_from_object

CATEGORY = "InsertAnywhere"

# tooltips of the links of the pack's own types (the same wherever they go in or come out)
SCENE_TIP = ("IA_SCENE from 4D Reconstruct: the frames with per-frame depth, intrinsics K, camera poses, moving "
             "masks and correspondences.")
OBJECT_TIP = ("IA_OBJECT3D from Object to 3D (Image or Mesh): the object's coloured points (and mesh) in its own "
              "frame, +Y up, +Z front, base at y = 0.")
PLACEMENT_TIP = "IA_PLACEMENT from Place Object: the object's pose in frame 0, standing on the scene surface."
TRACK_TIP = "IA_TRACK from Propagate: the object's world pose in every frame."
