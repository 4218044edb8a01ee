"""User-facing errors.

Every problem caused by the user's input raises `InsertAnywhereError` with a
message that names the problem and the fix. Nodes and the CLI show the message
as-is; anything else escaping the core is a bug.
"""


class InsertAnywhereError(ValueError):
    """Bad input or missing resource; the message says what to change."""


class ModelNotFoundError(InsertAnywhereError, FileNotFoundError):
    """A model file is missing from its models/ folder."""

    def __init__(self, folder: str, expected: str, searched: list[str] | None = None):
        from insertanywhere.model_catalog import where_to_get

        where = f" (searched: {', '.join(searched)})" if searched else ""
        super().__init__(
            f"Model '{expected}' not found in the '{folder}' models folder{where}. "
            f"Put the file into ComfyUI/models/{folder}/ (or pass its path) and retry. "
            f"Get it from: {where_to_get(folder, expected)}."
        )
        self.folder = folder
        self.expected = expected


class MissingModelsError(InsertAnywhereError, FileNotFoundError):
    """Several model files are missing; the message lists each with its folder and source."""

    def __init__(self, message: str, missing: list[tuple[str, str]]):
        super().__init__(message)
        self.missing = missing
