"""sfmodels, the application: the ``sfmodels`` command line (:mod:`sfmodels.cli`) and the
end-to-end demo (:mod:`sfmodels.demo`). The library is ``sfmodels_core``; this package is the
only one that may import both framework packages."""

__all__ = []
