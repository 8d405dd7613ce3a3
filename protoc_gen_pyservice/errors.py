"""The one exception type the generator raises for problems in its input."""


class GenerationError(Exception):
    """A problem in the protos or the parameter, reported to protoc as the response's error.

    `element` names where the problem is, as precisely as known: a file, then a full proto name
    (`user/v1/user.proto: user.v1.CreateUserRequest.email`), or a plugin option.
    """

    def __init__(self, element: str, message: str) -> None:
        super().__init__(f"{element}: {message}")
        self.element = element
        self.message = message
