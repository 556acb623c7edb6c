"""Where a person starts finmon and looks at it: settings, CLI, demo, feed, web."""
