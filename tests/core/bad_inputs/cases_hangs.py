"""Issue #11 point 4, no hangs: heavy meshes are simplified with a message, and the CLI refuses a
bad mesh or anchor before it reconstructs (reconstruct is replaced by a function that fails the
row if it is ever called)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insertanywhere.sample_scene import write_triangle_soup
from table import Case


def _load(spread, faces=100_000):
    def run(tmp: Path):
        from insertanywhere.masks.object3d import MAX_FACES, load_mesh

        obj = load_mesh(write_triangle_soup(tmp / "soup.stl", faces, spread))
        assert len(obj.faces) <= MAX_FACES
        return obj.warnings
    return run


class _Refused(AssertionError):
    pass


def _cli(mesh_writer, placement='{"anchor": [48, 40], "height_px": 20}', extra=()):
    """insertanywhere masks on a 5-frame sample video with reconstruct forbidden; the CLI's
    error (exit 2) comes back as the InsertAnywhereError it printed."""
    def run(tmp: Path):
        import contextlib
        import io

        import insertanywhere.masks.reconstruct as reconstruct_module
        from insertanywhere import cli
        from insertanywhere.errors import InsertAnywhereError
        from insertanywhere.sample_scene import make_scene

        folder = make_scene("static", num_frames=5, width=96, height=64).write_bundle(tmp / "bundle")
        mesh = mesh_writer(tmp, folder)
        (tmp / "placement.json").write_text(placement)

        def refuse(*_, **__):
            raise _Refused("reconstruct was called before the inputs were checked")

        saved, reconstruct_module.reconstruct = reconstruct_module.reconstruct, refuse
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                code = cli.main(["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(mesh),
                                 "--placement", str(tmp / "placement.json"), "--out", str(tmp / "out"), *extra])
        finally:
            reconstruct_module.reconstruct = saved
        if code == 2:
            raise InsertAnywhereError(err.getvalue().split("error: ", 1)[-1].strip())
        return [err.getvalue()]
    return run


def _flat_stl(tmp: Path, _folder) -> Path:
    path = tmp / "flat.stl"
    path.write_text("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 0 1\n"
                    "endloop\nendfacet\nendsolid x\n")
    return path


def _broken_stl(tmp: Path, _folder) -> Path:
    path = tmp / "broken.stl"
    path.write_bytes(b"\x00" * 80 + np.uint32(1000).tobytes() + b"\x01" * 100)  # says 1000 faces, holds 2
    return path


CASES = [
    Case("Object mesh: a 5 MB STL soup of 100k small triangles (over the face budget)", _load(0.01),
         r"^warning: Mesh 'soup\.stl' has 100000 triangles over the face budget of 50000; simplified to \d+ "
         r"for rendering speed\. Raise max_faces \(node\) / --max-faces \(CLI\) to keep more detail\.$"),
    Case("Object mesh: an STL soup of 20k large overlapping triangles (under the face budget)",
         _load(None, 20_000),
         r"^warning: Mesh 'soup\.stl' has 20000 triangles stacked \d+ deep over the object .*not a surface\); "
         r"simplified to \d+ for rendering speed\. Re-export the object as a surface mesh\.$"),
    Case("CLI masks: a flat mesh (no height), refused before reconstructing", _cli(_flat_stl),
         r"^error: Mesh 'flat\.stl' has no height along \+Y"),
    Case("CLI masks: a truncated binary STL, refused before reconstructing", _cli(_broken_stl),
         r"^error: Mesh 'broken\.stl' holds no triangles or points; use a non-empty mesh\.$"),
    Case("CLI masks: --max-faces 0, refused before reconstructing",
         _cli(lambda tmp, folder: folder / "object.ply", extra=("--max-faces", "0")),
         r"^error: The face budget max_faces is 0; give a whole number of triangles, at least 100 "
         r"\(default 50000\)\.$"),
    Case("CLI masks: placement anchor outside the video's frame, refused before reconstructing",
         _cli(lambda tmp, folder: folder / "object.ply", '{"anchor": [500, 40], "height_px": 20}'),
         r"^error: The anchor \(500\.0, 40\.0\) is outside frame 0 \(96x64\); pick a pixel inside the first frame\.$"),
]
