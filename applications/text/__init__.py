"""fastlearn.text"""
