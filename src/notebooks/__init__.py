"""Running the numbered notebooks: papermill runs (the demo), batch reruns per backbone x fold, HTML reports.

    python -m src.notebooks demo|clean ...
"""
