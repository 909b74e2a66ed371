"""fastlearn.vision"""
