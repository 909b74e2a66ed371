"""fastlearn.collab"""
