"""Self-contained HTML reports (`--format html`): inline styles and SVG charts, nothing fetched."""
