"""Custom ComfyUI types for the data flowing between InsertAnywhere stages."""

from ._comfy import io

Scene = io.Custom("IA_SCENE")          # masks.scene.SceneRecord: depth, K, poses, moving masks, flow
Object3D = io.Custom("IA_OBJECT3D")    # masks.object3d.Object3D: canonical coloured points (+ mesh)
Placement = io.Custom("IA_PLACEMENT")  # frame-0 pose of the object (placement JSON resolved on a scene)
Track = io.Custom("IA_TRACK")          # masks.scene.ObjectTrack: per-frame world_from_object

CATEGORY = "InsertAnywhere"
