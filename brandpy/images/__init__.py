"""Images: content-addressed store, layers, import/load/save, registry pull and
push, and copy-on-write container filesystems (see store.py for the layout)."""
