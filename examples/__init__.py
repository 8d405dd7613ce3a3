"""Runnable examples built on the generated code in generated/."""
