"""Procedural sample scenes with exact ground truth, in the same form as the bench scenes.

A small numpy ray caster renders a textured room (floor, walls, ceiling, posters, a cabinet,
a table and a crate; analytic oriented boxes) seen by a moving camera, and a rasteriser draws
the inserted object (a lathe vase with a handle or a lidded box, a trimesh mesh) z-buffered against it. Because
every pixel knows which primitive it hit and where on it, depth, optical flow, visibility and the
object's masks are exact, not estimated. Used by the unit tests and as the bundled demo input
(nothing may be downloaded).

Kinds:
  static          the object stands on static ground (floor or table); the camera orbits.
  moving_support  the object stands on a tray that slides and turns; the camera dollies.
  occluder        a box-shaped walker crosses in front of the object; the camera pans.
The held-out suite's kinds (SUITE_KINDS: camera motions, occluders, moving supports, hard images)
are laid out by suite.py; `insertanywhere bench --suite procedural` scores them.

World frame: +Z up, metres. Cameras: OpenCV (x right, y down, z forward), pixel centres at
integers; `camera_from_world[t]` maps world points to frame t's camera.

Modules, each importing only those above it:
  world              materials, lights, the analytic world and its builder
  raycast            first hits of camera rays in the world
  textures           surface colours: tiles, band-limited noise, Lambert light
  meshes             the inserted object's mesh (vase or lidded box)
  raster             the object's rasteriser and reference picture
  placement_inverse  the placement JSON of a known object pose
  layouts            the basic kinds' room, support, camera path and walker
  suite              the suite kinds' layouts
  truth              exact optical flow and a simulated monocular depth
  bundle             the scene bundle files, mp4 writing, a hostile triangle soup
  scene              SampleScene and make_scene
"""

from .bundle import write_mp4, write_triangle_soup
from .layouts import KINDS
from .meshes import OBJECT_SHAPES
from .placement_inverse import derive_placement
from .scene import ALL_KINDS, BACKGROUND_DEPTH, SampleScene, make_scene
from .suite import SUITE_KINDS

__all__ = ["ALL_KINDS", "BACKGROUND_DEPTH", "KINDS", "OBJECT_SHAPES", "SUITE_KINDS", "SampleScene", "derive_placement",
           "make_scene", "write_mp4", "write_triangle_soup"]
