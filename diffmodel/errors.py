"""The one base class of every mistake a user can make (params, data, checkpoints): stages catch
it and print its message as one line, with no traceback; anything else is a bug and shows one."""


class UserError(ValueError):
    """A one-line, user-facing problem; the message says what is wrong and, where it can, what to do."""
