"""A small real X application for the demo and tests: a Tk notes editor.

It gives the scripted session something realistic to work in (typing, a text
selection by drag, scrolling a long document, Ctrl+S to save) and writes what
it holds to disk on save, so a test can compare the document with the dataset.

Run: ``python -m deskcorder._demo_editor FILE``. WM_CLASS is "Notes".
"""

from __future__ import annotations

import sys
import tkinter as tk
from pathlib import Path

WM_CLASS = "Notes"
_FILLER = "\n".join(f"line {i:03d}: meeting notes, action items and follow-ups" for i in range(1, 121))


def main(path: str) -> None:
    target = Path(path)
    root = tk.Tk(className=WM_CLASS.lower())  # Tk capitalises the first letter for the class
    root.title(f"{target.name} - Notes")
    root.geometry("900x600+40+40")
    text = tk.Text(root, wrap="word", undo=True, font=("DejaVu Sans Mono", 12))
    bar = tk.Scrollbar(root, command=text.yview)
    text.configure(yscrollcommand=bar.set)
    bar.pack(side="right", fill="y")
    text.pack(side="left", fill="both", expand=True)
    text.insert("1.0", "\n\n" + _FILLER)
    text.mark_set("insert", "1.0")
    text.focus_set()

    def save(_event: object = None) -> str:
        target.write_text(text.get("1.0", "end-1c"), encoding="utf-8")
        root.title(f"{target.name} (saved) - Notes")
        return "break"

    root.bind("<Control-s>", save)
    root.protocol("WM_DELETE_WINDOW", lambda: (save(), root.destroy()))
    root.mainloop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m deskcorder._demo_editor FILE")
    main(sys.argv[1])
