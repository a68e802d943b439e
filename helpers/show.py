"""Showing the package's own code inside a notebook, so the notebook never holds a stale copy."""
import inspect


def show_source(obj):
    """Display the source of a helpers function or class, syntax-highlighted in Jupyter."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code, display
    except ImportError:  # plain Python: print it
        print(source)
        return
    display(Code(source, language="python"))
