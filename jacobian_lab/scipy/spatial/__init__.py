"""scipy.spatial on traced arrays (`jacobian_lab.scipy`): `distance`'s cdist, pdist and squareform."""
from . import distance

__all__ = ["distance"]
