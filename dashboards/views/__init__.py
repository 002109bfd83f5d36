"""One module per reviewer page; ``dashboards/app.py`` wires them into ``st.navigation``."""
