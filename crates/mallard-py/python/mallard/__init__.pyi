"""Type stubs for mallard (the Rust extension ``mallard._native``)."""

import os
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Bytes = Union[bytes, bytearray]
_Item = Union[str, "os.PathLike[str]", bytes, bytearray]
_Path = Union[str, "os.PathLike[str]"]

class PEFeatureExtractor:
    """EMBER's (feature_version=2) or EMBER2024's (3) PE feature extractor."""

    def __init__(
        self,
        feature_version: Literal[2, 3] = 2,
        print_feature_warning: bool = True,
        features_file: str = "",
    ) -> None: ...
    @property
    def dim(self) -> int:
        """2381 (version 2) or 2568 (version 3)."""
    @property
    def feature_version(self) -> int: ...
    @property
    def feature_set(self) -> str:
        """``"ember-v2"`` or ``"ember-v3"``."""
    def raw_features(self, bytez: _Bytes) -> Dict[str, Any]:
        """EMBER's raw feature dict of ``bytez``; ValueError for input it refuses."""
    def process_raw_features(self, raw_obj: Dict[str, Any]) -> npt.NDArray[np.float32]:
        """The float32 vector of a raw feature dict (ours, EMBER's or thrember's)."""
    def feature_vector(self, bytez: _Bytes) -> npt.NDArray[np.float32]:
        """The float32 feature vector of ``bytez``."""

class Model:
    """A trained mallard model: a model file or a built-in one."""

    @staticmethod
    def load(path: _Path) -> "Model": ...
    @staticmethod
    def builtin(name: Literal["pe", "api", "clamp"]) -> "Model": ...
    @property
    def kind(self) -> str: ...
    @property
    def input(self) -> Literal["features", "api_sequence", "bytes"]: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def threshold(self) -> float: ...
    @property
    def feature_set(self) -> Optional[str]: ...
    @property
    def feature_names(self) -> List[str]: ...
    def meta(self) -> Dict[str, Any]: ...
    def predict_proba(self, inputs: Any) -> npt.NDArray[np.float32]:
        """(len(inputs), len(labels)) class probabilities."""
    def score(self, inputs: Any) -> npt.NDArray[np.float32]:
        """P(malicious) per input (two-class models)."""
    def predict(self, inputs: Any) -> List[str]: ...
    def score_files(
        self, paths: Sequence[_Path], threads: Optional[int] = None
    ) -> npt.NDArray[np.float32]:
        """P(malicious) of PE files, features extracted as the model's feature_set."""
    def explain(self, input: Any, top: int = 5) -> List[Dict[str, Any]]: ...

def features(
    items: Iterable[_Item],
    feature_set: str = "ember-v2",
    threads: Optional[int] = None,
    errors: Literal["raise", "nan"] = "raise",
) -> npt.NDArray[np.float32]:
    """Feature matrix (len(items) x dim, float32) of paths and/or byte strings.

    errors="raise" (default) raises for the first failing item in input order
    (ValueError, or OSError for unreadable paths); errors="nan" gives it a NaN row.
    """

def names(feature_set: str = "ember-v2") -> List[str]:
    """Column names of a feature set, in vector order."""

def pe_files(
    paths: Sequence[_Path], max_depth: Optional[int] = None
) -> Tuple[List[str], List[Tuple[str, str]]]:
    """PE files under paths as ``mallard features`` finds them, and (path, error) pairs."""

def scan(
    path: _Path, top: int = 5, threshold: Optional[float] = None
) -> Dict[str, Any]:
    """The dict ``mallard scan --json PATH`` prints for one file."""

def scan_many(
    paths: Sequence[_Path],
    threads: Optional[int] = None,
    top: int = 5,
    threshold: Optional[float] = None,
) -> List[Dict[str, Any]]:
    """The dicts ``mallard scan --json --sort PATHS`` prints, in the same order."""
