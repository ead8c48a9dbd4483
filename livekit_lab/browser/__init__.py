"""Browser media for Live sessions: the anywidget bridge and the ipywebrtc clip adapter."""

from .bridge import Chunk, Frame, MediaBridge

__all__ = ["Chunk", "Frame", "MediaBridge"]
