<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis minScale="1e+08" version="3.22.16-Białowieża" hasScaleBasedVisibilityFlag="0" maxScale="0" styleCategories="AllStyleCategories">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal enabled="0" mode="0" fetchMode="0">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <customproperties>
    <Option type="Map">
      <Option name="identify/format" type="QString" value="Value"/>
    </Option>
  </customproperties>
  <pipe-data-defined-properties>
    <Option type="Map">
      <Option name="name" type="QString" value=""/>
      <Option name="properties"/>
      <Option name="type" type="QString" value="collection"/>
    </Option>
  </pipe-data-defined-properties>
  <pipe>
    <provider>
      <resampling enabled="false" maxOversampling="2" zoomedOutResamplingMethod="nearestNeighbour" zoomedInResamplingMethod="nearestNeighbour"/>
    </provider>
    <rasterrenderer classificationMin="0" opacity="1" nodataColor="" type="singlebandpseudocolor" alphaBand="-1" classificationMax="1" band="1">
      <minMaxOrigin>
        <limits>CumulativeCut</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.995</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader classificationMode="1" maximumValue="1" clip="0" labelPrecision="6" colorRampType="INTERPOLATED" minimumValue="0">
          <colorramp name="[source]" type="gradient">
            <Option type="Map">
              <Option name="color1" type="QString" value="0,0,4,255"/>
              <Option name="color2" type="QString" value="252,255,164,255"/>
              <Option name="discrete" type="QString" value="0"/>
              <Option name="rampType" type="QString" value="gradient"/>
              <Option name="stops" type="QString" value="0.0196078;2,2,12,255:0.0392157;5,4,23,255:0.0588235;10,7,34,255:0.0784314;16,9,45,255:0.0980392;22,11,57,255:0.117647;30,12,69,255:0.137255;38,12,81,255:0.156863;47,10,91,255:0.176471;56,9,98,255:0.196078;64,10,103,255:0.215686;73,11,106,255:0.235294;81,14,108,255:0.254902;89,16,110,255:0.27451;97,19,110,255:0.294118;105,22,110,255:0.313725;113,25,110,255:0.333333;120,28,109,255:0.352941;128,31,108,255:0.372549;136,34,106,255:0.392157;144,37,104,255:0.411765;152,39,102,255:0.431373;160,42,99,255:0.45098;168,46,95,255:0.470588;176,49,91,255:0.490196;183,53,87,255:0.509804;191,57,82,255:0.529412;198,61,77,255:0.54902;204,66,72,255:0.568627;211,71,67,255:0.588235;217,77,61,255:0.607843;223,83,55,255:0.627451;228,90,49,255:0.647059;233,97,43,255:0.666667;237,105,37,255:0.686275;241,113,31,255:0.705882;244,121,24,255:0.72549;247,130,18,255:0.745098;249,139,11,255:0.764706;250,148,7,255:0.784314;251,157,7,255:0.803922;252,166,12,255:0.823529;252,176,20,255:0.843137;251,186,31,255:0.862745;250,196,42,255:0.882353;248,205,55,255:0.901961;246,215,70,255:0.921569;244,225,86,255:0.941176;242,234,105,255:0.960784;242,242,125,255:0.980392;245,249,146,255"/>
            </Option>
            <prop v="0,0,4,255" k="color1"/>
            <prop v="252,255,164,255" k="color2"/>
            <prop v="0" k="discrete"/>
            <prop v="gradient" k="rampType"/>
            <prop v="0.0196078;2,2,12,255:0.0392157;5,4,23,255:0.0588235;10,7,34,255:0.0784314;16,9,45,255:0.0980392;22,11,57,255:0.117647;30,12,69,255:0.137255;38,12,81,255:0.156863;47,10,91,255:0.176471;56,9,98,255:0.196078;64,10,103,255:0.215686;73,11,106,255:0.235294;81,14,108,255:0.254902;89,16,110,255:0.27451;97,19,110,255:0.294118;105,22,110,255:0.313725;113,25,110,255:0.333333;120,28,109,255:0.352941;128,31,108,255:0.372549;136,34,106,255:0.392157;144,37,104,255:0.411765;152,39,102,255:0.431373;160,42,99,255:0.45098;168,46,95,255:0.470588;176,49,91,255:0.490196;183,53,87,255:0.509804;191,57,82,255:0.529412;198,61,77,255:0.54902;204,66,72,255:0.568627;211,71,67,255:0.588235;217,77,61,255:0.607843;223,83,55,255:0.627451;228,90,49,255:0.647059;233,97,43,255:0.666667;237,105,37,255:0.686275;241,113,31,255:0.705882;244,121,24,255:0.72549;247,130,18,255:0.745098;249,139,11,255:0.764706;250,148,7,255:0.784314;251,157,7,255:0.803922;252,166,12,255:0.823529;252,176,20,255:0.843137;251,186,31,255:0.862745;250,196,42,255:0.882353;248,205,55,255:0.901961;246,215,70,255:0.921569;244,225,86,255:0.941176;242,234,105,255:0.960784;242,242,125,255:0.980392;245,249,146,255" k="stops"/>
          </colorramp>
          <item alpha="255" label="0" color="#000004" value="0"/>
          <item alpha="255" label="0.0196" color="#02020c" value="0.0196078"/>
          <item alpha="255" label="0.0392" color="#050417" value="0.0392157"/>
          <item alpha="255" label="0.0588" color="#0a0722" value="0.0588235"/>
          <item alpha="255" label="0.0784" color="#10092d" value="0.0784314"/>
          <item alpha="255" label="0.098" color="#160b39" value="0.0980392"/>
          <item alpha="255" label="0.118" color="#1e0c45" value="0.117647"/>
          <item alpha="255" label="0.137" color="#260c51" value="0.137255"/>
          <item alpha="255" label="0.157" color="#2f0a5b" value="0.156863"/>
          <item alpha="255" label="0.176" color="#380962" value="0.176471"/>
          <item alpha="255" label="0.196" color="#400a67" value="0.196078"/>
          <item alpha="255" label="0.216" color="#490b6a" value="0.215686"/>
          <item alpha="255" label="0.235" color="#510e6c" value="0.235294"/>
          <item alpha="255" label="0.255" color="#59106e" value="0.254902"/>
          <item alpha="255" label="0.275" color="#61136e" value="0.27451"/>
          <item alpha="255" label="0.294" color="#69166e" value="0.294118"/>
          <item alpha="255" label="0.314" color="#71196e" value="0.313725"/>
          <item alpha="255" label="0.333" color="#781c6d" value="0.333333"/>
          <item alpha="255" label="0.353" color="#801f6c" value="0.352941"/>
          <item alpha="255" label="0.373" color="#88226a" value="0.372549"/>
          <item alpha="255" label="0.392" color="#902568" value="0.392157"/>
          <item alpha="255" label="0.412" color="#982766" value="0.411765"/>
          <item alpha="255" label="0.431" color="#a02a63" value="0.431373"/>
          <item alpha="255" label="0.451" color="#a82e5f" value="0.45098"/>
          <item alpha="255" label="0.471" color="#b0315b" value="0.470588"/>
          <item alpha="255" label="0.49" color="#b73557" value="0.490196"/>
          <item alpha="255" label="0.51" color="#bf3952" value="0.509804"/>
          <item alpha="255" label="0.529" color="#c63d4d" value="0.529412"/>
          <item alpha="255" label="0.549" color="#cc4248" value="0.54902"/>
          <item alpha="255" label="0.569" color="#d34743" value="0.568627"/>
          <item alpha="255" label="0.588" color="#d94d3d" value="0.588235"/>
          <item alpha="255" label="0.608" color="#df5337" value="0.607843"/>
          <item alpha="255" label="0.627" color="#e45a31" value="0.627451"/>
          <item alpha="255" label="0.647" color="#e9612b" value="0.647059"/>
          <item alpha="255" label="0.667" color="#ed6925" value="0.666667"/>
          <item alpha="255" label="0.686" color="#f1711f" value="0.686275"/>
          <item alpha="255" label="0.706" color="#f47918" value="0.705882"/>
          <item alpha="255" label="0.725" color="#f78212" value="0.72549"/>
          <item alpha="255" label="0.745" color="#f98b0b" value="0.745098"/>
          <item alpha="255" label="0.765" color="#fa9407" value="0.764706"/>
          <item alpha="255" label="0.784" color="#fb9d07" value="0.784314"/>
          <item alpha="255" label="0.804" color="#fca60c" value="0.803922"/>
          <item alpha="255" label="0.824" color="#fcb014" value="0.823529"/>
          <item alpha="255" label="0.843" color="#fbba1f" value="0.843137"/>
          <item alpha="255" label="0.863" color="#fac42a" value="0.862745"/>
          <item alpha="255" label="0.882" color="#f8cd37" value="0.882353"/>
          <item alpha="255" label="0.902" color="#f6d746" value="0.901961"/>
          <item alpha="255" label="0.922" color="#f4e156" value="0.921569"/>
          <item alpha="255" label="0.941" color="#f2ea69" value="0.941176"/>
          <item alpha="255" label="0.961" color="#f2f27d" value="0.960784"/>
          <item alpha="255" label="0.98" color="#f5f992" value="0.980392"/>
          <item alpha="255" label="1" color="#fcffa4" value="1"/>
          <rampLegendSettings suffix="" direction="0" orientation="2" maximumLabel="" minimumLabel="" useContinuousLegend="1" prefix="">
            <numericFormat id="basic">
              <Option type="Map">
                <Option name="decimal_separator" type="QChar" value=""/>
                <Option name="decimals" type="int" value="6"/>
                <Option name="rounding_type" type="int" value="0"/>
                <Option name="show_plus" type="bool" value="false"/>
                <Option name="show_thousand_separator" type="bool" value="true"/>
                <Option name="show_trailing_zeros" type="bool" value="false"/>
                <Option name="thousand_separator" type="QChar" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" gamma="1" contrast="0"/>
    <huesaturation colorizeStrength="100" saturation="0" grayscaleMode="0" colorizeBlue="128" colorizeOn="0" invertColors="0" colorizeRed="255" colorizeGreen="128"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
