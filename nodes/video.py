"""Video in: load a file or a core VIDEO as frames, fitted for Wan (H, W % 16, 4k+1 frames)."""

from __future__ import annotations

import os

from insertanywhere import memory as core_memory
from insertanywhere import video as core_video

from ._comfy import check_combos, check_input_file, input_file_path, input_files, io, progress_bar
from .tensors import frames_to_image, image_to_frames
from .types import CATEGORY

FRAME_COUNT_TIP = "How many frames came out (after start, stride, cap and the frame-count rule)."

FIT_TOOLTIP = ("crop: scale to cover and centre-crop to multiples of 16 (keeps aspect); "
               "resize: stretch to the nearest multiples of 16; none: keep the size.")
COUNT_TOOLTIP = "4k+1 trims to 1, 5, 9, ... 81 frames as Wan VACE needs; any keeps every frame."


def _selection_inputs() -> list:
    return [
        io.Int.Input("start_frame", default=0, min=0, max=1_000_000, tooltip="First frame to keep."),
        io.Int.Input("frame_cap", default=81, min=1, max=10_000,
                     tooltip="At most this many frames are decoded (memory stays bounded)."),
        io.Int.Input("stride", default=1, min=1, max=100, tooltip="Keep every n-th frame; fps is divided by it."),
        io.Int.Input("max_side", default=832, min=0, max=8192, step=16,
                     tooltip="Longer side after resizing; 0 keeps the source size."),
        io.Combo.Input("fit", options=list(core_video.FIT_MODES), default="crop", tooltip=FIT_TOOLTIP),
        io.Combo.Input("frame_count", options=list(core_video.FRAME_COUNT_MODES), default="4k+1",
                       tooltip=COUNT_TOOLTIP),
    ]


_OUTPUTS = [
    io.Image.Output(display_name="frames", tooltip="The selected frames, fitted."),
    io.Float.Output(display_name="fps", tooltip="Frame rate of the output frames (source fps / stride)."),
    io.Int.Output(display_name="frame_count", tooltip=FRAME_COUNT_TIP),
]


def _selection(start_frame, frame_cap, stride, max_side, fit, frame_count) -> core_memory.Selection:
    """The node's knobs as the core's Selection (sizes snapped to 16 for Wan)."""
    return core_memory.Selection(start=start_frame, stride=stride, frame_cap=frame_cap, max_side=max_side, fit=fit,
                                 multiple=16, frame_count=frame_count)


def _decode(source, start_frame, frame_cap, stride, max_side, fit, frame_count) -> io.NodeOutput:
    # the frames feed the mask pipeline: refuse before decoding what it could not hold (budget from
    # the available memory, or INSERTANYWHERE_MEMORY_BUDGET_GB), naming the knob values that fit
    budget = core_memory.budget(None, with_depth=True, comfy=True,
                                flag_hint=f"{core_memory.ENV_BUDGET}=<GiB> in the server's environment")
    frames, fps = core_video.read_video(source, _selection(start_frame, frame_cap, stride, max_side, fit, frame_count),
                                        progress=progress_bar(frame_cap), memory=budget)
    return io.NodeOutput(frames_to_image(frames), fps, int(frames.shape[0]))


class LoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        import folder_paths

        files = folder_paths.filter_files_content_types(input_files(), ["video"])
        return io.Schema(
            node_id="IA_LoadVideo",
            display_name="Load Video (InsertAnywhere)",
            category=f"{CATEGORY}/video",
            description="Decode a video file from the input folder, streaming: start, cap, stride, and fit to "
                        "sizes Wan accepts.",
            inputs=[io.Combo.Input("file", options=sorted(files), upload=io.UploadType.video,
                                   tooltip="A video in ComfyUI's input folder."), *_selection_inputs()],
            outputs=_OUTPUTS,
        )

    @classmethod
    def execute(cls, file, start_frame, frame_cap, stride, max_side, fit, frame_count) -> io.NodeOutput:
        check_combos(cls, locals())
        path = input_file_path(file, "Video file")
        return _decode(path, start_frame, frame_cap, stride, max_side, fit, frame_count)

    @classmethod
    def fingerprint_inputs(cls, file, **_):
        try:
            return os.path.getmtime(input_file_path(file, "Video file"))
        except Exception:  # refused or missing: execute reports it
            return file

    @classmethod
    def validate_inputs(cls, file):
        # only `file`: ComfyUI skips its own min / max / type checks for every input named here (or
        # for all of them with **kwargs), and reports a failure once per input named
        return check_input_file(file, "Video file")


class VideoToFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_VideoToFrames",
            display_name="Video to Frames (InsertAnywhere)",
            category=f"{CATEGORY}/video",
            description="Turn a core VIDEO (e.g. from Load Video) into fitted frames without decoding all of it.",
            inputs=[io.Video.Input("video", tooltip="A core VIDEO, e.g. from core Load Video."),
                    *_selection_inputs()],
            outputs=_OUTPUTS,
        )

    @classmethod
    def execute(cls, video, start_frame, frame_cap, stride, max_side, fit, frame_count) -> io.NodeOutput:
        check_combos(cls, locals())
        if hasattr(video, "get_stream_source"):
            return _decode(video.get_stream_source(), start_frame, frame_cap, stride, max_side, fit, frame_count)
        components = video.get_components()  # in-memory video: frames are already decoded
        frames = image_to_frames(components.images)[start_frame::stride][:frame_cap]
        fitted = core_video.fit_frames(frames, multiple=16, max_side=max_side, fit=fit, frame_count=frame_count)
        return io.NodeOutput(frames_to_image(fitted), float(components.frame_rate) / stride, int(fitted.shape[0]))


class FitFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_FitFrames",
            display_name="Fit Frames for Wan",
            category=f"{CATEGORY}/video",
            description="Fit an IMAGE batch to H, W multiples of 16 and a 4k+1 frame count.",
            inputs=[
                io.Image.Input("images", tooltip="Any IMAGE batch (the frames of a video)."),
                io.Int.Input("max_side", default=832, min=0, max=8192, step=16,
                             tooltip="Longer side after resizing; 0 keeps the size."),
                io.Combo.Input("fit", options=list(core_video.FIT_MODES), default="crop", tooltip=FIT_TOOLTIP),
                io.Combo.Input("frame_count", options=list(core_video.FRAME_COUNT_MODES), default="4k+1",
                               tooltip=COUNT_TOOLTIP),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="The frames, fitted."),
                     io.Int.Output(display_name="frame_count", tooltip=FRAME_COUNT_TIP)],
        )

    @classmethod
    def execute(cls, images, max_side, fit, frame_count) -> io.NodeOutput:
        check_combos(cls, locals())
        fitted = core_video.fit_frames(image_to_frames(images), multiple=16, max_side=max_side, fit=fit,
                                       frame_count=frame_count)
        return io.NodeOutput(frames_to_image(fitted), int(fitted.shape[0]))


NODES = [LoadVideo, VideoToFrames, FitFrames]


# --- GET /insertanywhere/video_info: what Load Video will load, shown on the node before a run ----------

INFO_ROUTE = "/insertanywhere/video_info"
# (name, default, min, max) of the integer knobs the route takes, as the node's widgets bound them
_INFO_KNOBS = (("start_frame", 0, 0, 1_000_000), ("frame_cap", 81, 1, 10_000), ("stride", 1, 1, 100),
               ("max_side", 832, 0, 8192))


def register_routes() -> None:
    from .routes import add_routes

    add_routes(INFO_ROUTE, [("get", INFO_ROUTE, _video_info)])


def _info_knobs(query) -> dict:
    """The selection knobs of a video_info query (defaults as the node's), or an InsertAnywhereError."""
    from insertanywhere.errors import InsertAnywhereError

    knobs = {}
    for name, default, low, high in _INFO_KNOBS:
        text = query.get(name, str(default))
        if not text.isdigit() or not low <= int(text) <= high:
            raise InsertAnywhereError(f"'{name}' = {text[:40]!r} is not a whole number from {low} to {high}.")
        knobs[name] = int(text)
    for name, options, default in (("fit", core_video.FIT_MODES, "crop"),
                                   ("frame_count", core_video.FRAME_COUNT_MODES, "4k+1")):
        knobs[name] = query.get(name, default)
        if knobs[name] not in options:
            raise InsertAnywhereError(f"'{name}' = {knobs[name][:40]!r} is not one of {', '.join(options)}.")
    return knobs


def describe_video(name: str, knobs: dict) -> dict:
    """The source's size, fps and frame count and what the node's knobs will load from it (no decoding)."""
    info = core_video.probe(input_file_path(name, "Video file"))
    plan = core_video.planned_output(info, _selection(knobs["start_frame"], knobs["frame_cap"], knobs["stride"],
                                                      knobs["max_side"], knobs["fit"], knobs["frame_count"]))
    return {"file": name, "width": info.width, "height": info.height, "fps": info.fps, "num_frames": info.num_frames,
            "output": {"frames": plan.frames, "frames_known": plan.frames_known, "width": plan.width,
                       "height": plan.height, "fps": plan.fps}}


async def _video_info(request):
    """?file=<name in input/>&start_frame=&frame_cap=&stride=&max_side=&fit=&frame_count= -> JSON, or a
    JSON error: 400 for bad knobs, a name outside the input folder or a file that is not a video."""
    from aiohttp import web

    from insertanywhere.errors import InsertAnywhereError

    from .routes import error, run_blocking

    try:
        knobs = _info_knobs(request.query)
    except InsertAnywhereError as exc:
        return error(400, str(exc))
    result, err = await run_blocking(describe_video, request.query.get("file", ""), knobs)
    return err if err is not None else web.json_response(result)
