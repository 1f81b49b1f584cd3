"""Worker processes: the wire format (`channel`), starting and reaping workers (`spawn`) and loading
adapters inside them (`loading`)."""
