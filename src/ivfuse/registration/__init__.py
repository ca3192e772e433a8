"""Registration of infrared/visible pairs from real camera rigs (OpenCV, the ``cv`` extra).

* :func:`estimate` finds the transform of one pair (coarse template matching on edge maps when
  one field of view lies inside the other, then ORB keypoints, RANSAC and ECC refinement, and a
  direct search of the similarity that maximises the edge-map correlation; optionally a dense
  residual flow).
* :class:`Registration` holds it, resamples with ``apply`` and saves with ``to_json``.
* :func:`register` registers a file pair or two folders and writes the aligned pairs, the
  transforms, valid-region masks and checkerboard overlays.
"""

from __future__ import annotations

from .batch import RegisterResult, checkerboard, register, registered_for_fusion
from .estimate import METHODS, RegistrationParams, estimate, refine_flow
from .transform import Registration, RegistrationError

__all__ = ["METHODS", "RegisterResult", "Registration", "RegistrationError", "RegistrationParams", "checkerboard",
           "estimate", "refine_flow", "register", "registered_for_fusion"]
