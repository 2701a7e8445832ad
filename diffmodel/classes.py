"""A domain's classes in two tiers (FineDiffusion): fine classes, each in one superclass.

Labels are fine-class indices; a superclass follows from its fine class. NO_LABEL (-1) in
either tier means "not given": the model has a learned entry for it, which is what
classifier-free guidance ("no label") and superclass guidance ("superclass only") contrast
the class with. A domain with a single class is not class-conditional: its model has no
class embedder at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError

NO_LABEL = -1


class UnknownClassError(UserError):
    """A class name the model or data does not know."""


@dataclass(frozen=True)
class ClassScheme:
    classes: tuple[str, ...]  # fine classes; label k means classes[k]
    superclasses: tuple[str, ...]
    superclass_of: tuple[int, ...]  # the superclass index of each fine class

    @classmethod
    def build(cls, domain: str, classes: tuple[str, ...], grouping: dict[str, tuple[str, ...]] | None) -> ClassScheme:
        """From params: `grouping` maps superclass -> fine classes; None puts them all under the domain.
        Superclasses are numbered in the order of their first fine class, so the scheme (and a model's
        superclass embedding rows) does not depend on the order the mapping is written in."""
        classes = tuple(classes) or (domain,)
        grouping = grouping or {domain: classes}
        owner_name = {fine: name for name, members in grouping.items() for fine in members}
        supers = tuple(dict.fromkeys(owner_name[c] for c in classes))
        return cls(classes, supers, tuple(supers.index(owner_name[c]) for c in classes))

    @classmethod
    def from_dict(cls, raw: dict | None) -> ClassScheme | None:
        if not raw:
            return None
        grouping = {name: tuple(members) for name, members in raw["superclasses"].items()}
        return cls.build("", tuple(raw["classes"]), grouping)

    def as_dict(self) -> dict:
        """What manifest.json and meta.json record: the classes in label order and the grouping."""
        return {"classes": list(self.classes),
                "superclasses": {name: [c for c, s in zip(self.classes, self.superclass_of) if s == k]
                                 for k, name in enumerate(self.superclasses)}}

    @property
    def conditional(self) -> bool:
        """Whether a model of this domain takes class labels (more than one class to tell apart)."""
        return len(self.classes) > 1

    def index(self, name: str) -> int:
        if name not in self.classes:
            raise UnknownClassError(f"unknown class {name!r}; this model knows: {self.describe()}")
        return self.classes.index(name)

    def superclass_labels(self, fine: np.ndarray) -> np.ndarray:
        """Each fine label's superclass; NO_LABEL stays NO_LABEL."""
        fine = np.asarray(fine, np.int64)
        lookup = np.array(self.superclass_of, np.int64)
        return np.where(fine < 0, NO_LABEL, lookup[np.clip(fine, 0, None)])

    def same_superclass_other(self, fine: np.ndarray) -> np.ndarray:
        """For each label, the next fine class of its own superclass - the wrong class a grayscale
        image cannot rule out - or, when it is alone there, the next class of all."""
        out = np.array(fine, np.int64)
        for k, s in enumerate(self.superclass_of):
            siblings = [j for j, t in enumerate(self.superclass_of) if t == s]
            if len(siblings) == 1:
                siblings = list(range(len(self.classes)))
            out[np.asarray(fine) == k] = siblings[(siblings.index(k) + 1) % len(siblings)]
        return out

    def describe(self) -> str:
        return "; ".join(f"{name}: {', '.join(members)}" for name, members in self.as_dict()["superclasses"].items())
