"""fastlearn.tabular"""
