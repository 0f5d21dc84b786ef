"""``python -m equisynth`` runs the command-line interface."""

from equisynth.cli.app import main

if __name__ == "__main__":
    main()
