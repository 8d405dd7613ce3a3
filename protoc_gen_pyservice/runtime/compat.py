"""The handshake between generated modules and this runtime."""

# Generated code states the runtime API it was written against; these are the ones this
# runtime serves. Bump the maximum on additions, the minimum on removals.
MIN_GENERATED_API = 1
MAX_GENERATED_API = 1


def ensure_compatible(generated_api: int) -> None:
    """Fail at import, with what to do about it, when generated code and runtime disagree."""
    if not MIN_GENERATED_API <= generated_api <= MAX_GENERATED_API:
        from protoc_gen_pyservice import __version__

        raise ImportError(
            f"this module was generated for protoc-gen-pyservice runtime API {generated_api}, "
            f"but the installed protoc-gen-pyservice {__version__} supports API "
            f"{MIN_GENERATED_API} to {MAX_GENERATED_API}: regenerate the code with the "
            "installed plugin, or install the plugin version that generated it"
        )
